# Every target creates .venv itself, so a fresh machine needs only python3 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test

.PHONY: run test lint bench train clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@
	@echo "installed: the command line is $(BIN)/ticket-router (or run 'source $(BIN)/activate', then ticket-router)"

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

## make run: install, train the default model if there is none, serve on port 8000
run: $(STAMP_RUN)
	$(BIN)/ticket-router serve

## make test: install with test extras, lint, type-check and run the whole suite
test: $(STAMP_TEST)
	$(BIN)/ruff check model service tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest

lint: $(STAMP_TEST)
	$(BIN)/ruff check model service tests bench
	$(BIN)/ruff format --check model service tests bench
	$(BIN)/mypy

## make bench: run every benchmark in bench/ and print their tables
bench: $(STAMP_TEST)
	$(BIN)/python -m bench

train: $(STAMP_RUN)
	$(BIN)/ticket-router train

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
