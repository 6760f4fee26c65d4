"""Webhook settings: read from the environment, and refused at start-up when they cannot work."""

from __future__ import annotations

import pytest

from service.settings import Settings, SettingsError


def test_webhook_settings_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TICKET_ROUTER_WRITE_BACK": "label+comment",
            "TICKET_ROUTER_GITHUB_WRITE_BACK": "dry-run",
            "TICKET_ROUTER_INSECURE_WEBHOOKS": "true",
            "TICKET_ROUTER_TRIAGE_LABEL": "triage",
            "TICKET_ROUTER_GITHUB_BOT_LOGIN": "ticket-router[bot]",
            "TICKET_ROUTER_GITLAB_SIGNATURE_TOLERANCE_SECONDS": "120",
            "TICKET_ROUTER_WRITEBACK_ATTEMPTS": "5",
            "TICKET_ROUTER_GITLAB_WEBHOOK_TOKEN": "t",
            "TICKET_ROUTER_GITLAB_TOKEN": "glpat",
        }
    )
    assert settings.write_back_for("github") == "dry-run"
    assert settings.write_back_for("gitlab") == "label+comment"
    assert settings.insecure_webhooks is True and settings.triage_label == "triage"
    github, gitlab = settings.trackers["github"], settings.trackers["gitlab"]
    assert (github.bot, gitlab.signature_tolerance_seconds) == ("ticket-router[bot]", 120)  # type: ignore[attr-defined]
    assert settings.writeback_attempts == 5
    assert "glpat" not in repr(settings) and "'t'" not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TICKET_ROUTER_GITLAB_WRITE_BACK": "comment"}, "TICKET_ROUTER_GITLAB_WRITE_BACK='comment' is not a valid"),
        ({"TICKET_ROUTER_TRIAGE_LABEL": "needs triage"}, "TICKET_ROUTER_TRIAGE_LABEL must be one label"),
        ({"TICKET_ROUTER_TRIAGE_LABEL": "a,b"}, "TICKET_ROUTER_TRIAGE_LABEL must be one label"),
        ({"TICKET_ROUTER_WEBHOOK_RETENTION_DAYS": "3"}, "at least 7"),
        ({"TICKET_ROUTER_WRITEBACK_ATTEMPTS": "0"}, "TICKET_ROUTER_WRITEBACK_ATTEMPTS must be between 1 and 10"),
        ({"TICKET_ROUTER_INSECURE_WEBHOOKS": "maybe"}, "TICKET_ROUTER_INSECURE_WEBHOOKS='maybe' is not a valid"),
        ({"TICKET_ROUTER_GITLAB_SIGNING_TOKEN": "whsec_not base64!"}, "TICKET_ROUTER_GITLAB_SIGNING_TOKEN must be"),
        (
            {"TICKET_ROUTER_GITHUB_WEBHOOK_SECRET": "s"},
            "github webhooks are configured with write-back mode 'label' but TICKET_ROUTER_GITHUB_TOKEN is not set",
        ),
        (
            {
                "TICKET_ROUTER_GITLAB_SIGNING_TOKEN": "whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
                "TICKET_ROUTER_WRITE_BACK": "label+comment",
            },
            "TICKET_ROUTER_GITLAB_TOKEN is not set; set it, or set TICKET_ROUTER_GITLAB_WRITE_BACK=dry-run",
        ),
        (
            {"TICKET_ROUTER_JIRA_WEBHOOK_SECRET": "s", "TICKET_ROUTER_JIRA_URL": "https://acme.atlassian.net"},
            "TICKET_ROUTER_JIRA_EMAIL, TICKET_ROUTER_JIRA_API_TOKEN are not set",
        ),
    ],
)
def test_unusable_webhook_settings_stop_the_start(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("+", r"\+").replace("(", r"\(")):
        Settings.from_env(environ)


def test_dry_run_needs_no_credentials() -> None:
    settings = Settings.from_env({"TICKET_ROUTER_JIRA_WEBHOOK_SECRET": "s", "TICKET_ROUTER_JIRA_WRITE_BACK": "dry-run"})
    assert settings.webhook_secured("jira") and settings.write_back_for("jira") == "dry-run"
