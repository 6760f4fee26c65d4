"""``ticket-router import``: a labelled tracker export becomes training examples, once, with reasons for the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from model.dataset import load_training_data
from service.cli import main
from tests.conftest import make_training_data

GH_EXPORT = [
    {
        "number": 1,
        "title": "Coupon total wrong at checkout",
        "body": "charged 12, shown 10",
        "labels": [{"name": "team:development"}, {"name": "bug"}],
    },
    {"number": 2, "title": "Nightly deploy fails at migrate", "body": "", "labels": [{"name": "team:devops"}]},
    {"number": 3, "title": "Labelled twice", "body": "", "labels": [{"name": "team:devops"}, {"name": "team:sre"}]},
    {"number": 4, "title": "No team on this one", "body": "x", "labels": [{"name": "bug"}]},
    {"number": 5, "title": "", "body": "", "labels": [{"name": "team:sre"}]},
    {
        "number": 6,
        "title": "Coupon total wrong at checkout",
        "body": "charged 12, shown 10",
        "labels": [{"name": "team:development"}],
    },
]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    training = make_training_data(tmp_path / "training_data")
    return {"TICKET_ROUTER_DATA_DIR": str(tmp_path / "var"), "TICKET_ROUTER_TRAINING_DATA": str(training)}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_gh_export_is_imported_once_with_every_left_out_ticket_explained(env: dict[str, str], tmp_path: Path) -> None:
    export = tmp_path / "issues.json"
    export.write_text(json.dumps(GH_EXPORT))
    code, output = run(env, "import", str(export), "--json", "--repository", "acme/shop")
    assert code == 0, output
    report = json.loads(output)
    assert report["kept"] == {"DevOps": 1, "Development": 1}
    assert report["skipped"] == {
        "several team labels": 1,
        "no team label and no team column": 1,
        "empty text: no title, body or text": 1,
        "a duplicate of an earlier row": 1,
    }
    written = Path(env["TICKET_ROUTER_TRAINING_DATA"]) / "examples" / "imported-issues.jsonl"
    rows = [json.loads(line) for line in written.read_text().splitlines()]
    assert [(r["team"], r["repository"], r["source"]) for r in rows] == [
        ("Development", "acme/shop", "import:issues"),
        ("DevOps", "acme/shop", "import:issues"),
    ]
    data = load_training_data(Path(env["TICKET_ROUTER_TRAINING_DATA"]))
    assert sum(1 for t in data.examples if t.source == "import:issues") == 2, "the examples validate"

    code, output = run(env, "import", str(export), "--json", "--repository", "acme/shop")
    again = json.loads(output)
    assert again["kept"] == {} and again["skipped"]["already an example"] == 3, "nothing is duplicated"
    assert len(written.read_text().splitlines()) == 2


def test_jira_csv_and_a_team_column(env: dict[str, str], tmp_path: Path) -> None:
    jira = tmp_path / "jira.csv"
    jira.write_text(
        "Summary,Issue key,Description,Labels,Labels,Project key\n"
        "Disk full on db-1,OPS-7,writes failing,team-sre,oncall,OPS\n"
        "Old ticket,OPS-8,no labels,,,OPS\n",
        encoding="utf-8",
    )
    code, output = run(env, "import", str(jira), "--json")
    report = json.loads(output)
    assert code == 0 and report["format"] == "jira-csv"
    assert report["kept"] == {"SRE": 1} and report["skipped"] == {"no team label and no team column": 1}
    lines = (tmp_path / "training_data" / "examples" / "imported-jira.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["repository"] == "OPS"

    teams = tmp_path / "teams.jsonl"
    teams.write_text(
        '{"id": 1, "title": "Bump the shared base image", "team": "Platform"}\n{"title": "x", "team": "Sales"}\n'
    )
    code, output = run(env, "import", str(teams), "--json", "--dry-run")
    report = json.loads(output)
    assert report["kept"] == {"Platform": 1} and report["skipped"] == {"unknown team 'Sales' in the team column": 1}
    assert not (tmp_path / "training_data" / "examples" / "imported-teams.jsonl").exists(), "a dry run writes nothing"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"[not json", "not a JSON array"),
    ],
)
def test_unreadable_input_is_a_clear_error(
    env: dict[str, str], tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "export.json"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(main, ["import", str(path)], env=env)
    if content is None:
        assert result.exit_code == 1 and message in result.output and str(path) in result.output
    else:
        assert result.exit_code == 0 and message in result.output
