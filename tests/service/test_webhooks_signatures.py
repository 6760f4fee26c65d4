"""Authentication of deliveries: the documented test vectors, constant-time comparison, and 401/404 at the endpoints."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import pytest
import respx

from service.settings import Settings
from service.trackers.errors import SignatureError
from service.trackers.signatures import (
    gitlab_signature,
    hub_signature,
    verify_gitlab_signature,
    verify_gitlab_token,
    verify_hub_signature,
)
from tests.service.webhook_kit import (
    configured,
    github_headers,
    gitlab_headers,
    jira_headers,
    raw,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

VECTOR_SECRET = "It's a Secret to Everybody"
VECTOR_BODY = b"Hello, World!"
VECTOR_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SIGNING_TOKEN = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
SIGNING_ID = "f5e5f430-f57b-4e6e-9fac-d9128cd7232f"
SIGNING_TS = "1735689600"
SIGNING_BODY = b'{"object_kind":"issue"}'
SIGNING_SIGNATURE = "v1,UyoW+/eiuSTQjzMF0KBMa9GLauMss3lapQMyf2buRJY="


def test_github_and_jira_test_vector() -> None:
    assert hub_signature(VECTOR_SECRET, VECTOR_BODY) == VECTOR_SIGNATURE
    verify_hub_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE, "X-Hub-Signature-256")
    verify_hub_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE.upper().replace("SHA256", "sha256"), "X")


def test_gitlab_signing_token_test_vector() -> None:
    assert gitlab_signature(SIGNING_TOKEN, SIGNING_ID, SIGNING_TS, SIGNING_BODY) == SIGNING_SIGNATURE
    now = float(SIGNING_TS)
    verify_gitlab_signature(SIGNING_TOKEN, SIGNING_BODY, SIGNING_ID, SIGNING_TS, SIGNING_SIGNATURE, 300, now)
    # During a rotation GitLab may send several signatures; one match is enough.
    both = f"v1,AAAA{SIGNING_SIGNATURE[7:]} {SIGNING_SIGNATURE}"
    verify_gitlab_signature(SIGNING_TOKEN, SIGNING_BODY, SIGNING_ID, SIGNING_TS, both, 300, now)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing X-Hub-Signature-256 header"),
        ("", "missing X-Hub-Signature-256 header"),
        ("sha1=757107ea", "X-Hub-Signature-256 must be sha256=<hex digest>"),
        ("sha256=", "X-Hub-Signature-256 must be sha256=<hex digest>"),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", "must be sha256=<hex digest>"),
        (VECTOR_SIGNATURE[:-1] + "0", "X-Hub-Signature-256 does not match the body"),
        ("sha256=not-hex-at-all", "X-Hub-Signature-256 does not match the body"),
    ],
)
def test_wrong_hub_signatures(header: str | None, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_hub_signature(VECTOR_SECRET, VECTOR_BODY, header, "X-Hub-Signature-256")


@pytest.mark.parametrize(
    ("webhook_id", "timestamp", "signature", "now", "message"),
    [
        (SIGNING_ID, SIGNING_TS, SIGNING_SIGNATURE, 1735689600 + 301, "more than 300 s away"),
        (SIGNING_ID, SIGNING_TS, SIGNING_SIGNATURE, 1735689600 - 301, "more than 300 s away"),
        (SIGNING_ID, "soon", SIGNING_SIGNATURE, 1735689600, "whole seconds"),
        ("another-id", SIGNING_TS, SIGNING_SIGNATURE, 1735689600, "does not match"),
        (SIGNING_ID, "1735689601", SIGNING_SIGNATURE, 1735689600, "does not match"),
        (SIGNING_ID, SIGNING_TS, "v2," + SIGNING_SIGNATURE[3:], 1735689600, "does not match"),
        (None, SIGNING_TS, SIGNING_SIGNATURE, 1735689600, "missing webhook-id"),
        (SIGNING_ID, None, SIGNING_SIGNATURE, 1735689600, "missing webhook-id"),
        (SIGNING_ID, SIGNING_TS, None, 1735689600, "missing webhook-id"),
    ],
)
def test_wrong_gitlab_signatures(
    webhook_id: str | None, timestamp: str | None, signature: str | None, now: float, message: str
) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_gitlab_signature(SIGNING_TOKEN, SIGNING_BODY, webhook_id, timestamp, signature, 300, now)


def test_gitlab_secret_token() -> None:
    verify_gitlab_token("s3cret", "s3cret")
    for provided in (None, "", "s3cre", "s3cret ", "S3CRET"):
        with pytest.raises(SignatureError):
            verify_gitlab_token("s3cret", provided)


@pytest.mark.parametrize(
    "check",
    [
        lambda: verify_hub_signature(VECTOR_SECRET, VECTOR_BODY, VECTOR_SIGNATURE, "X-Hub-Signature"),
        lambda: verify_gitlab_token("s3cret", "s3cret"),
        lambda: verify_gitlab_signature(
            SIGNING_TOKEN, SIGNING_BODY, SIGNING_ID, SIGNING_TS, SIGNING_SIGNATURE, 300, 1735689600
        ),
    ],
)
def test_every_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch, check: Callable[[], None]) -> None:
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    check()
    assert calls, "the secret was compared without hmac.compare_digest"


def _github(body: bytes) -> dict[str, str]:
    return github_headers(body)


def _without(headers: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k != name}


BAD_AUTH = [
    ("github", "issues_opened", lambda b: _without(github_headers(b), "X-Hub-Signature-256")),
    ("github", "issues_opened", lambda b: github_headers(b) | {"X-Hub-Signature-256": hub_signature("wrong", b)}),
    ("github", "issues_opened", lambda b: github_headers(b + b" ")),
    ("gitlab", "issue_open", lambda b: _without(gitlab_headers(b), "X-Gitlab-Token")),
    ("gitlab", "issue_open", lambda b: gitlab_headers(b) | {"X-Gitlab-Token": "guess"}),
    ("jira", "issue_created", lambda b: _without(jira_headers(b), "X-Hub-Signature")),
    # Jira signs with X-Hub-Signature; a GitHub-style header alone is not accepted.
    (
        "jira",
        "issue_created",
        lambda b: (
            _without(jira_headers(b), "X-Hub-Signature")
            | {"X-Hub-Signature-256": hub_signature("jira-webhook-secret", b)}
        ),
    ),
]


@pytest.mark.parametrize(("tracker", "name", "headers"), BAD_AUTH)
async def test_missing_or_wrong_authentication_is_401_and_nothing_is_processed(
    settings: Settings, tracker: str, name: str, headers: Callable[[bytes], dict[str, str]]
) -> None:
    body = raw(tracker, name)
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            response = await client.post(f"/v1/webhooks/{tracker}", content=body, headers=headers(body))
            await settle(client)
            store = store_of(client)
            assert (
                store.outbox.list_deliveries() == []
                and store.audit.count() == 0
                and store.outbox.list_writebacks() == []
            )
        assert router.calls.call_count == 0
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 401 and problem["type"] == "urn:ticket-router:problem:bad-signature"


@pytest.mark.parametrize(
    ("tracker", "variable"),
    [
        ("github", "TICKET_ROUTER_GITHUB_WEBHOOK_SECRET"),
        ("gitlab", "TICKET_ROUTER_GITLAB_WEBHOOK_TOKEN or TICKET_ROUTER_GITLAB_SIGNING_TOKEN"),
        ("jira", "TICKET_ROUTER_JIRA_WEBHOOK_SECRET"),
    ],
)
async def test_a_tracker_without_a_secret_is_disabled(settings: Settings, tracker: str, variable: str) -> None:
    async with serving(settings) as client:
        response = await client.post(f"/v1/webhooks/{tracker}", content=b"{}", headers={"X-GitHub-Event": "issues"})
        assert store_of(client).outbox.list_deliveries() == []
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].endswith(f"webhooks are disabled: set {variable} to enable them")


async def test_insecure_development_mode_accepts_unsigned_deliveries_and_says_so(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    body = raw("github", "issues_opened")
    unsigned = _without(github_headers(body), "X-Hub-Signature-256")
    # Litestar's logging set-up replaces the root handlers, so listen on our logger itself.
    ours = logging.getLogger("ticket_router")
    ours.addHandler(caplog.handler)
    with caplog.at_level(logging.WARNING), respx.mock() as router:
        async with serving(Settings(**{**_fields(settings), "insecure_webhooks": True})) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=unsigned)).json()
            await settle(client)
        assert router.calls.call_count == 0, "without a token the write-back is a dry-run"
    assert (result["outcome"], result["write_back"]) == ("classified", "dry-run")
    ours.removeHandler(caplog.handler)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("GitHub webhooks accept UNVERIFIED deliveries" in m for m in messages)
    assert any("GitHub write-back runs as dry-run: TICKET_ROUTER_GITHUB_TOKEN not set" in m for m in messages)


async def test_a_configured_secret_is_checked_even_in_insecure_mode(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    async with serving(configured(settings, insecure_webhooks=True)) as client:
        response = await client.post(
            "/v1/webhooks/github", content=body, headers=_without(github_headers(body), "X-Hub-Signature-256")
        )
    assert response.status_code == 401


async def test_header_names_are_case_insensitive(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    shouting = {name.upper(): value for name, value in github_headers(body, "ping").items()}
    async with serving(configured(settings)) as client:
        response = await client.post("/v1/webhooks/github", content=body, headers=shouting)
    assert response.status_code == 200 and response.json()["reason"] == "ping: the hook is set up"


async def test_credentials_without_a_secret_leave_the_tracker_disabled_with_a_warning(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    ours = logging.getLogger("ticket_router")
    ours.addHandler(caplog.handler)
    try:
        async with serving(configured(settings, github_webhook_secret=None)) as client:
            response = await client.post("/v1/webhooks/github", content=b"{}")
    finally:
        ours.removeHandler(caplog.handler)
    assert response.status_code == 404
    assert any(
        "GitHub write-back credentials are set but TICKET_ROUTER_GITHUB_WEBHOOK_SECRET is not" in r.getMessage()
        for r in caplog.records
    )


async def test_openapi_lists_the_webhook_and_write_back_endpoints(settings: Settings) -> None:
    async with serving(settings) as client:
        paths = (await client.get("/schema/openapi.json")).json()["paths"]
    for path in ["/v1/webhooks/github", "/v1/webhooks/gitlab", "/v1/webhooks/jira"]:
        assert "post" in paths[path], path
    assert "get" in paths["/v1/writebacks"] and "post" in paths["/v1/writebacks/retry"]
    assert "get" in paths["/v1/webhooks/deliveries"]


def _fields(settings: Settings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}
