"""Changing the teams: renaming and merging team ids through the real CLI, and a cold start with an
organisation's own teams and no examples."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conftest import make_training_data


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = make_training_data(tmp_path / "training_data")
    (root / "examples" / "alt.jsonl").write_text(
        json.dumps({"title": "Both teams own this one", "team": "DevOps", "alt": "Platform", "source": "x"}) + "\n"
    )
    return root


def run(root: Path, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {"TICKET_ROUTER_TRAINING_DATA": str(root), "TICKET_ROUTER_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def teams_of(root: Path) -> list[str]:
    return [line.split('"')[1] for line in (root / "teams.toml").read_text().splitlines() if line.startswith("id =")]


def example_teams(root: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in (root / "examples").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            for team in (row["team"], row.get("alt")):
                if team:
                    counts[team] = counts.get(team, 0) + 1
    return counts


def test_rename_changes_teams_toml_and_every_example(data: Path, tmp_path: Path) -> None:
    before = example_teams(data)
    toml = (data / "teams.toml").read_text()
    code, output = run(data, tmp_path, "teams", "rename", "SRE", "Reliability", "--dry-run")
    assert code == 0 and "would have renamed SRE -> Reliability" in output
    assert (data / "teams.toml").read_text() == toml and example_teams(data) == before, "a dry run changes nothing"
    code, output = run(data, tmp_path, "teams", "rename", "SRE", "Reliability")
    assert code == 0, output
    assert teams_of(data) == ["Development", "DevOps", "Reliability", "Platform"]
    after = example_teams(data)
    assert after["Reliability"] == before["SRE"] and "SRE" not in after
    assert toml.count("\n") == (data / "teams.toml").read_text().count("\n"), "only the id and name lines change"
    assert "# The default taxonomy" in (data / "teams.toml").read_text(), "comments stay"
    code, output = run(data, tmp_path, "validate")
    assert code == 0 and "'Reliability': 12" in output


def test_merge_relabels_the_examples_and_removes_the_team(data: Path, tmp_path: Path) -> None:
    before = example_teams(data)
    code, output = run(data, tmp_path, "teams", "merge", "Platform", "DevOps", "--json")
    assert code == 0, output
    change = json.loads(output)
    assert (change["action"], change["old"], change["new"]) == ("merge", "Platform", "DevOps")
    assert teams_of(data) == ["Development", "DevOps", "SRE"]
    after = example_teams(data)
    assert after["DevOps"] == before["DevOps"] + before["Platform"] - 1, "an alt that became the team is dropped"
    assert "Platform" not in after
    assert run(data, tmp_path, "validate")[0] == 0
    assert run(data, tmp_path, "train")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rename", "Sales", "Revenue"], "no team 'Sales'"),
        (["rename", "SRE", "devops"], "already exists"),
        (["rename", "SRE", "9lives"], "not a valid team id"),
        (["merge", "SRE", "SRE"], "into itself"),
        (["merge", "SRE", "Marketing"], "no team 'Marketing'"),
    ],
)
def test_refusals_change_nothing(data: Path, tmp_path: Path, args: list[str], message: str) -> None:
    toml = (data / "teams.toml").read_text()
    code, output = run(data, tmp_path, "teams", *args)
    assert code == 1 and message in output
    assert (data / "teams.toml").read_text() == toml


def test_a_change_applies_whole_or_not_at_all(data: Path, tmp_path: Path) -> None:
    broken = data / "examples" / "zz_broken.jsonl"
    broken.write_text('{"title": "fine", "team": "SRE"}\n{"title": "", "team": "SRE"}\n')
    before = {p.name: p.read_text() for p in (data / "examples").glob("*")} | {"t": (data / "teams.toml").read_text()}
    code, output = run(data, tmp_path, "teams", "rename", "SRE", "Reliability")
    assert code == 1 and "empty text" in output
    after = {p.name: p.read_text() for p in (data / "examples").glob("*")} | {"t": (data / "teams.toml").read_text()}
    assert after == before
    assert not list(data.rglob("*.partial"))


def test_merging_down_to_one_team_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "two"
    (root / "examples").mkdir(parents=True)
    (root / "teams.toml").write_text(
        '[[teams]]\nid = "A"\nname = "A"\ndescription = "Owns billing."\n'
        '[[teams]]\nid = "B"\nname = "B"\ndescription = "Owns servers."\n'
    )
    code, output = run(root, tmp_path, "teams", "merge", "A", "B")
    assert code == 1 and "at least two teams" in output


ORG_TEAMS = """
[[teams]]
id = "Payments"
name = "Payments"
description = "Owns checkout, card payments, refunds, invoices and the payment provider integrations."
responsibilities = ["Fix failed card payments and refunds.", "Own invoices and VAT on invoices."]

[[teams]]
id = "Data"
name = "Data platform"
description = "Owns the data warehouse, ETL pipelines, dbt models and the analytics dashboards."
terms = ["warehouse", "dbt", "ETL", "Airflow DAG"]

[[teams]]
id = "Infra"
name = "Infrastructure"
description = "Owns the cloud accounts, Kubernetes clusters, networking, DNS and the CI runners."
tools = ["Terraform", "ArgoCD"]
"""


def test_cold_start_with_an_organisations_own_teams_and_no_examples(tmp_path: Path) -> None:
    root = tmp_path / "org"
    (root / "examples").mkdir(parents=True)
    (root / "teams.toml").write_text(ORG_TEAMS)
    code, output = run(root, tmp_path, "train")
    assert code == 0, output
    assert "trained from descriptions alone (no examples yet): Payments, Data, Infra" in output
    for text, team in [
        ("Refund failed for a card payment", "Payments"),
        ("The nightly Airflow DAG that loads the warehouse is stuck", "Data"),
        ("terraform plan wants to recreate the DNS zone", "Infra"),
    ]:
        code, output = run(root, tmp_path, "classify", "--json", text)
        assert code == 0 and json.loads(output)["team"] == team, (text, output)
    code, output = run(root, tmp_path, "teams", "rename", "Infra", "Platform")
    assert code == 0 and "team:infra to team:platform" in output
    assert run(root, tmp_path, "train")[0] == 0
