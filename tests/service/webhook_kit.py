"""Shared pieces of the webhook tests: fixtures on disk, signing the way each tracker does, waiting for write-backs.

Signatures are computed here independently of service/trackers/signatures.py, from the
trackers' documented schemes, so a mistake there cannot hide in both places.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.store import Store, WritebackRecord

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "webhooks"

GITHUB_SECRET = "gh-webhook-secret"
GITHUB_TOKEN = "ghp_example_token"
GITLAB_SECRET = "gl-secret-token"
GITLAB_SIGNING = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
GITLAB_TOKEN = "glpat-example"
JIRA_SECRET = "jira-webhook-secret"
JIRA_EMAIL = "router@acme.example"
JIRA_TOKEN = "jira-api-token"
JIRA_SITE = "https://acme.atlassian.net"
ADMIN = "admin-secret"


def configured(settings: Settings, **overrides: Any) -> Settings:
    """Every tracker configured with a secret and credentials; fast retries for tests."""
    values: dict[str, Any] = {
        "github_webhook_secret": GITHUB_SECRET,
        "github_token": GITHUB_TOKEN,
        "gitlab_webhook_token": GITLAB_SECRET,
        "gitlab_token": GITLAB_TOKEN,
        "gitlab_url": "https://gitlab.example.com",
        "jira_webhook_secret": JIRA_SECRET,
        "jira_url": JIRA_SITE,
        "jira_email": JIRA_EMAIL,
        "jira_api_token": JIRA_TOKEN,
        "admin_token": ADMIN,
        "writeback_backoff_seconds": 0.0,
        "writeback_poll_seconds": 0.05,
        "writeback_retry_seconds": 3600.0,
    }
    values.update(overrides)
    return replace_settings(settings, **values)


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    """``dataclasses.replace`` that also takes tracker settings flat, as ``<tracker>_<field>=value``.

    ``github_token="x"`` changes ``token`` in the ``github`` group, the way TICKET_ROUTER_GITHUB_TOKEN does.
    """
    groups = dict(settings.trackers)
    plain: dict[str, Any] = {}
    for key, value in changes.items():
        tracker, _, name = key.partition("_")
        if tracker in groups and name:
            groups[tracker] = groups[tracker].replace(**{name: value})
        else:
            plain[key] = value
    return dataclasses.replace(settings, **plain, trackers=groups)


def fixture(tracker: str, name: str) -> dict[str, Any]:
    """A payload fixture as a dict (to vary it)."""
    loaded: dict[str, Any] = json.loads((FIXTURES / tracker / f"{name}.json").read_bytes())
    return loaded


def raw(tracker: str, name: str) -> bytes:
    """A payload fixture's exact bytes."""
    return (FIXTURES / tracker / f"{name}.json").read_bytes()


def as_bytes(payload: dict[str, Any] | bytes) -> bytes:
    """A body to send: fixtures' bytes as they are, dicts as compact JSON."""
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def hub(secret: str, body: bytes) -> str:
    """``sha256=<hex>`` as GitHub and Jira compute it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_headers(body: bytes, event: str = "issues", delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub sends with a delivery."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/8f9c2a1",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "109948940",
        "X-Hub-Signature-256": hub(GITHUB_SECRET, body),
    }


def gitlab_headers(
    body: bytes, event: str = "Issue Hook", delivery: str | None = None, signed: bool = False
) -> dict[str, str]:
    """The headers GitLab sends: the secret token, and the signing-token headers when ``signed``."""
    key = delivery or str(uuid.uuid4())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/18.6.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": GITLAB_SECRET,
        "X-Gitlab-Instance": "https://gitlab.example.com",
        "X-Gitlab-Webhook-UUID": "7b2f3c1e-9d4a-4c55-8e3b-1f0a2d6c9e11",
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": key,
    }
    if signed:
        timestamp = str(int(time.time()))
        secret = base64.b64decode(GITLAB_SIGNING.removeprefix("whsec_"))
        signed_content = f"{key}.{timestamp}.".encode() + body
        signature = base64.b64encode(hmac.new(secret, signed_content, hashlib.sha256).digest()).decode()
        headers |= {"webhook-id": key, "webhook-timestamp": timestamp, "webhook-signature": f"v1,{signature}"}
    return headers


def jira_headers(body: bytes, delivery: str | None = None) -> dict[str, str]:
    """The headers a Jira Cloud admin webhook with a secret sends."""
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Atlassian Webhook HTTP Client",
        "X-Atlassian-Webhook-Identifier": delivery or str(uuid.uuid4()),
        "X-Atlassian-Webhook-Flow": "Primary",
        "X-Hub-Signature": hub(JIRA_SECRET, body),
    }


def admin() -> dict[str, str]:
    """The admin's bearer header."""
    return {"Authorization": f"Bearer {ADMIN}"}


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The real app with its lifespan (decision worker, write-back worker) running."""
    async with AsyncTestClient(app=create_app(settings)) as client:
        yield client


def store_of(client: AsyncTestClient[Litestar]) -> Store:
    """The running app's store (for assertions on what was persisted)."""
    store: Store = client.app.state.runtime.store
    return store


async def settle(client: AsyncTestClient[Litestar], timeout: float = 5.0) -> list[WritebackRecord]:
    """Wait until no write-back is pending or being worked on; returns every write-back."""
    store = store_of(client)
    deadline = time.monotonic() + timeout
    while True:
        rows = store.outbox.list_writebacks(1000)
        busy = [r for r in rows if r.status == "pending" or r.claimed_until is not None]
        if not busy:
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"write-backs still busy: {busy}")
        await asyncio.sleep(0.01)


def sent_json(request: httpx.Request) -> Any:
    """The JSON body of an outgoing request."""
    return json.loads(request.content) if request.content else None
