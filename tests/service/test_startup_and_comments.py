"""What the service says at start-up about its trackers, and the comment a person reads on a ticket."""

from __future__ import annotations

import logging

import pytest
from litestar.testing import AsyncTestClient

from model.decision import Decision, Term
from service.app import create_app
from service.settings import Settings
from service.webhooks.comments import comment_text
from tests.service.webhook_kit import configured, replace_settings

pytestmark = pytest.mark.anyio


async def test_start_up_names_the_enabled_trackers_and_their_write_back(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    chosen = replace_settings(
        configured(settings, github_write_back="label+comment", jira_write_back="dry-run", github_bot_login="router"),
        gitlab_webhook_token=None,
    )
    with caplog.at_level(logging.INFO, logger="ticket_router.app"):
        async with AsyncTestClient(app=create_app(chosen)):
            pass
    lines = [r.getMessage() for r in caplog.records if r.name == "ticket_router.app"]
    assert (
        "GitHub webhooks: enabled at /v1/webhooks/github, signature verified, write-back label+comment (as router)"
        in lines
    )
    assert any(line.startswith("GitLab webhooks: disabled (set TICKET_ROUTER_GITLAB_WEBHOOK_TOKEN") for line in lines)
    assert "Jira webhooks: enabled at /v1/webhooks/jira, signature verified, write-back dry-run" in lines


def decision(abstained: bool) -> Decision:
    return Decision(
        team="SRE",
        confidence=0.45 if abstained else 0.93,
        abstained=abstained,
        scores={
            "Development": 0.05,
            "DevOps": 0.3 if abstained else 0.01,
            "SRE": 0.45 if abstained else 0.93,
            "Platform": 0.2 if abstained else 0.01,
        },
        explanation=[Term("latency", 2.1), Term("p99", 1.4)],
        model_version="20261204T172903Z-d716d5",
    )


LABELS = {"Development": "team:development", "DevOps": "team:devops", "SRE": "team:sre", "Platform": "team:platform"}


def test_a_routed_comment_says_which_team_why_and_how_to_correct_it() -> None:
    text = comment_text(decision(False), "team:sre", "abc123", LABELS, {"SRE": "Site Reliability"})
    assert text.splitlines() == [
        "Ticket Router routed this ticket to SRE (Site Reliability): label team:sre, confidence 93%.",
        'Why: the words "latency", "p99" point to SRE.',
        "Wrong team? Replace team:sre with the right team's label (team:development, team:devops or team:platform);"
        " the router records that as a correction and learns from it at its next training (or send POST"
        " /v1/feedback with decision_id abc123 and the team).",
        "Decision abc123, model 20261204T172903Z-d716d5.",
    ]


def test_an_abstained_comment_gives_the_best_guesses_and_every_label() -> None:
    text = comment_text(decision(True), "needs-triage", "abc123", LABELS)
    first, why, fix, _ = text.splitlines()
    assert first == (
        "Ticket Router is not confident enough to pick a team: its best guess is SRE at 45%, then DevOps at 30%."
        " It labelled this ticket needs-triage for a person to route."
    )
    assert why == 'Why SRE: the words "latency", "p99" point that way.'
    assert fix.startswith("To route it, set the right team's label (team:development, team:devops, team:sre or")
