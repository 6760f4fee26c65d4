from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from model.dataset import load_examples, load_training_data
from model.errors import DatasetError
from model.taxonomy import load_taxonomy

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
GOOD = {"title": "CI build fails on main", "body": "npm ci exits 1", "team": "DevOps"}


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "examples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ('{"title": "x", "team": "Marketing"}', "unknown team 'Marketing'"),
        ('{"title": "  ", "body": "", "team": "SRE"}', "empty text"),
        ('{"team": "SRE"}', "empty text"),
        ('{"title": "x", "team": "SRE"', "malformed JSON"),
        ("not json at all", "malformed JSON"),
        ('{"title": "x"}', "missing required field `team`"),
        ('{"title": 5, "team": "SRE"}', "Expected `str | null`, got `int`"),
        ('{"title": "x", "team": "SRE", "labels": []}', "unknown field `labels`"),
        ('{"text": "x", "title": "y", "team": "SRE"}', "not both"),
        ('{"title": "x", "team": "SRE", "alt": "Sales"}', "unknown alt team 'Sales'"),
        ('{"title": "x", "team": "SRE", "alt": "SRE"}', "alt names the same team"),
        (json.dumps(GOOD), "duplicate of the ticket at"),
        (json.dumps({**GOOD, "title": "ci BUILD fails   on main", "team": "SRE"}), "duplicate of the ticket at"),
    ],
)
def test_validator_names_file_and_line(tmp_path: Path, bad_line: str, message: str) -> None:
    path = write(tmp_path, [json.dumps(GOOD), "", bad_line])
    with pytest.raises(DatasetError) as info:
        load_examples([path], TAXONOMY)
    problem = info.value.problems[0]
    assert (problem.path, problem.line) == (str(path), 3)
    assert message in problem.message
    assert f"{path}:3:" in str(info.value)


def test_undecodable_lines_are_problems_too(tmp_path: Path) -> None:
    path = tmp_path / "examples.jsonl"
    path.write_bytes(b'{"title": "\xff\xfe", "team": "SRE"}\n' + b'{"title": ' + b"[" * 100_000 + b"\n")
    with pytest.raises(DatasetError) as info:
        load_examples([path], TAXONOMY)
    first = info.value.problems[0]
    assert (first.line, first.message) == (1, "not valid UTF-8")
    assert info.value.problems[1].line == 2


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, ["{", '{"title": "", "team": "SRE"}', '{"title": "ok", "team": "Nope"}'])
    with pytest.raises(DatasetError) as info:
        load_examples([path], TAXONOMY)
    assert [p.line for p in info.value.problems] == [1, 2, 3]


def test_text_stands_for_title_and_body(tmp_path: Path) -> None:
    path = write(tmp_path, ['{"text": "Disk full on db-1", "team": "SRE", "id": 7, "source": "jira"}'])
    [ticket] = load_examples([path], TAXONOMY)
    assert (ticket.title, ticket.body, ticket.id, ticket.source) == ("Disk full on db-1", "", "7", "jira")
    assert ticket.origin == f"{path}:1"


def test_alt_names_a_defensible_second_team(tmp_path: Path) -> None:
    path = write(tmp_path, ['{"title": "502s after the deploy", "team": "SRE", "alt": "DevOps"}'])
    [ticket] = load_examples([path], TAXONOMY)
    assert (ticket.team, ticket.alt) == ("SRE", "DevOps")


def test_shipped_training_data_is_valid_and_large_enough() -> None:
    data = load_training_data(ROOT / "training_data")
    counts = Counter(t.team for t in data.examples)
    assert set(counts) == set(TAXONOMY.ids)
    assert min(counts.values()) >= 250, counts


def test_an_example_may_say_where_it_was_filed(tmp_path: Path) -> None:
    lines = [
        '{"title": "Update README.md", "team": "Platform", "repository": "acme/helm-charts"}',
        '{"title": "Update README.md", "team": "Development", "repository": "acme/checkout-web"}',
    ]
    first, second = load_examples([write(tmp_path, lines)], TAXONOMY)
    assert first.repository == "acme/helm-charts"
    assert "helm-charts" in first.text and first.text != second.text, "same title, another repository: not a duplicate"
