"""compose.yaml and the Dockerfile, checked without a Docker engine."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return data


def test_compose_file_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((FIXTURES / "compose-spec.json").read_text())
    jsonschema.Draft201909Validator(schema).validate(compose)


def test_router_service_has_port_volume_healthcheck_and_environment(compose: dict[str, Any]) -> None:
    router = compose["services"]["router"]
    assert router["build"] == "."
    assert any(str(p).endswith(":8000") for p in router["ports"])
    env = router["environment"]
    assert env["TICKET_ROUTER_HOST"] == "0.0.0.0"
    data_dir = env["TICKET_ROUTER_DATA_DIR"]
    volume, _, target = router["volumes"][0].partition(":")
    assert target == data_dir
    assert volume in compose["volumes"], "the data dir is a named volume"
    assert all(key.startswith("TICKET_ROUTER_") for key in env)
    health = router["healthcheck"]
    assert "/readyz" in " ".join(health["test"])
    assert {"interval", "timeout", "retries"} <= set(health)


def test_dockerfile_is_small_non_root_and_installs_from_pyproject() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM python:3.11-slim") == 2, "multi-stage on the slim base"
    assert re.search(r"^USER (?!root)\w+", text, re.MULTILINE)
    assert "COPY pyproject.toml" in text and "pip install ." in text
    assert "TICKET_ROUTER_HOST=0.0.0.0" in text
    assert 'CMD ["ticket-router", "serve"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)


def healthcheck_command(compose: dict[str, Any], port: int) -> list[str]:
    """The compose healthcheck as an argv, pointed at ``port``."""
    test = compose["services"]["router"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [part.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for part in test[1:]]
