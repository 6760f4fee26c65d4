"""Routing-policy commands: `rules test`, `validate` with rules, per-team precision targets in train and evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conftest import make_training_data

RULES = """
[[rules]]
name = "dependency bots"
author = ["dependabot[bot]"]
skip = true

[[rules]]
name = "sev titles"
title = "(?i)^sev[0-9]"
team = "SRE"
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    training = make_training_data(tmp_path / "training_data")
    (training / "rules.toml").write_text(RULES)
    return {"TICKET_ROUTER_DATA_DIR": str(tmp_path / "var"), "TICKET_ROUTER_TRAINING_DATA": str(training)}


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=env)
    return result.exit_code, result.output


def test_rules_test_shows_which_rule_each_ticket_hits(env: dict[str, str], tmp_path: Path) -> None:
    tickets = tmp_path / "tickets.jsonl"
    rows = [
        {"id": "1", "title": "Bump lodash from 4.17.20 to 4.17.21", "author": "dependabot[bot]"},
        {"id": "2", "title": "SEV2: checkout slow"},
        {"id": "3", "title": "Add dark mode"},
        {"id": "4", "title": ""},
    ]
    tickets.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    code, output = run(env, "rules", "test", str(tickets), "--json")
    assert code == 0, output
    hits = [json.loads(line) for line in output.splitlines()]
    assert [(h["id"], h["rule"], h["outcome"]) for h in hits] == [
        ("1", "dependency bots", "skip"),
        ("2", "sev titles", "SRE"),
        ("3", None, None),
        ("4", None, None),
    ]
    assert hits[3]["error"] == "empty text: no title, body or text"
    code, output = run(env, "rules", "test", str(tickets))
    assert code == 0 and "tickets per rule" in output and "dependency bots" in output


def test_validate_checks_the_rules_and_names_a_bad_rule(env: dict[str, str]) -> None:
    code, output = run(env, "validate")
    assert code == 0 and "2 valid rules" in output
    path = Path(env["TICKET_ROUTER_TRAINING_DATA"]) / "rules.toml"
    path.write_text(RULES + '\n[[rules]]\nname = "typo team"\ntitle = "x"\nteam = "Sre"\n')
    code, output = run(env, "validate")
    assert code == 1
    assert f"{path}: rule 'typo team' (rule 3): unknown team 'Sre'" in output


def test_a_team_with_its_own_target_gets_its_own_threshold(env: dict[str, str]) -> None:
    teams = Path(env["TICKET_ROUTER_TRAINING_DATA"]) / "teams.toml"
    teams.write_text(teams.read_text().replace('id = "SRE"\n', 'id = "SRE"\ntarget_precision = 0.999\n', 1))
    code, output = run(env, "train", "--json")
    assert code == 0, output
    version = json.loads(output)["version"]
    code, output = run(env, "models", "show", version)
    manifest = json.loads(output)
    routing = manifest["report"]["team_routing"]
    assert routing["SRE"]["target"] == 0.999 and routing["Development"]["target"] == 0.9
    assert manifest["team_thresholds"]["SRE"] == routing["SRE"]["threshold"]
    code, output = run(env, "evaluate", "--out", str(Path(env["TICKET_ROUTER_DATA_DIR"]) / "reports"))
    assert code == 0, output
    assert "abstain threshold per team" in output and "0.999" in output


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TICKET_ROUTER_TIE_MARGIN", "1.5", "TICKET_ROUTER_TIE_MARGIN must be in [0, 1)"),
        ("TICKET_ROUTER_TIE_MARGIN", "wide", "TICKET_ROUTER_TIE_MARGIN='wide' is not a valid value"),
        ("TICKET_ROUTER_ASK_QUESTIONS", "maybe", "TICKET_ROUTER_ASK_QUESTIONS='maybe' is not a valid value"),
        ("TICKET_ROUTER_QUALITY_WINDOW_DAYS", "0", "TICKET_ROUTER_QUALITY_WINDOW_DAYS must be at least 1"),
        ("TICKET_ROUTER_DRIFT_TOLERANCE", "0", "TICKET_ROUTER_DRIFT_TOLERANCE must be in (0, 1)"),
    ],
)
def test_routing_settings_are_checked(env: dict[str, str], variable: str, value: str, message: str) -> None:
    code, output = run({**env, variable: value}, "validate")
    assert code == 1 and message in output


def test_routing_settings_are_read(env: dict[str, str], tmp_path: Path) -> None:
    from service.settings import Settings

    settings = Settings.from_env(
        {
            **env,
            "TICKET_ROUTER_RULES": str(tmp_path / "mine.toml"),
            "TICKET_ROUTER_ASK_QUESTIONS": "true",
            "TICKET_ROUTER_PROTECTED_LABELS": "security, legal-hold",
        }
    )
    assert settings.rules_path == tmp_path / "mine.toml" and settings.ask_questions
    assert settings.protected_labels == ("security", "legal-hold")
    assert Settings.from_env(env).rules_path == Path(env["TICKET_ROUTER_TRAINING_DATA"]) / "rules.toml"
