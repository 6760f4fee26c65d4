"""Operations: rate limits, metrics, structured logs, readiness, limits."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import re
import sqlite3

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from service.app import create_app
from service.logs import JsonFormatter, request_id
from service.settings import Settings, SettingsError
from tests.service.webhook_kit import replace_settings

pytestmark = pytest.mark.anyio

TICKET = {"title": "Grafana alert: p99 latency above 2s on checkout", "body": "SECRET-TICKET-WORDS in the body"}


async def test_rate_limit_answers_429_with_retry_after(settings: Settings) -> None:
    limited = dataclasses.replace(settings, rate_limit="3/minute", api_tokens=("token-one", "token-two"))
    one = {"Authorization": "Bearer token-one"}
    async with AsyncTestClient(app=create_app(limited)) as client:
        statuses = [(await client.post("/v1/classify", json=TICKET, headers=one)).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        refused = await client.post("/v1/classify", json=TICKET, headers=one)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["status"] == 429
        other = await client.post("/v1/classify", json=TICKET, headers={"Authorization": "Bearer token-two"})
        assert other.status_code == 200, "another token has its own budget"
        assert (await client.get("/healthz")).status_code == 200, "probes are never limited"
        assert (await client.get("/readyz")).status_code == 200


@pytest.mark.parametrize("value", ["fast", "10/week", "0/second", "-1/minute"])
def test_bad_rate_limits_are_named(value: str) -> None:
    with pytest.raises(SettingsError, match="TICKET_ROUTER_RATE_LIMIT"):
        Settings.from_env({"TICKET_ROUTER_RATE_LIMIT": value})


async def test_metrics_cover_requests_decisions_and_the_model(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    await client.post("/v1/classify", json=TICKET)
    await client.get("/v1/models/20991231T000000Z-abcdef")
    text = (await client.get("/metrics")).text
    assert re.search(
        r'ticket_router_requests_total\{[^}]*method="POST"[^}]*path="/v1/classify"[^}]*status_code="200"', text
    )
    assert re.search(r'ticket_router_requests_total\{[^}]*path="/v1/models/\{version\}"[^}]*status_code="404"', text)
    assert "ticket_router_request_duration_seconds_bucket{" in text
    assert re.search(r'ticket_router_decisions_total\{abstained="(true|false)",source="api",team="SRE"\} [1-9]', text)
    active = (settings.registry_dir / "ACTIVE").read_text().strip()
    assert f'ticket_router_model_info{{version="{active}"}} 1.0' in text
    for name in [
        "ticket_router_webhook_events_total",
        "ticket_router_writebacks_total",
        "ticket_router_training_duration_seconds",
    ]:
        assert f"# TYPE {name}" in text


async def test_access_log_is_one_json_line_with_a_request_id_and_no_ticket_text(
    client: AsyncTestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.post("/v1/classify", json=TICKET, headers={"X-Request-Id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    generated = await client.get("/v1/models/nope", headers={"X-Request-Id": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{16}", generated.headers["x-request-id"])
    missing = await client.get("/no/such/path")
    assert missing.headers["x-request-id"]
    access = [r for r in caplog.records if r.name == "ticket_router.access"]
    assert [(r.method, r.route, r.status) for r in access] == [  # type: ignore[attr-defined]
        ("POST", "/v1/classify", 200),
        ("GET", "/v1/models/{version}", 404),
        ("GET", "/no/such/path", 404),
    ]
    line = json.loads(JsonFormatter().format(access[0]))
    assert line["message"] == "request" and line["status"] == 200 and line["duration_ms"] > 0
    everything = "\n".join(JsonFormatter().format(r) for r in caplog.records)
    assert "SECRET-TICKET-WORDS" not in everything
    assert "p99 latency above" not in everything


def test_json_formatter_includes_the_request_id() -> None:
    token = request_id.set("req-1")
    try:
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "req-1" and line["level"] == "warning"


async def test_long_texts_are_truncated_not_refused(settings: Settings) -> None:
    short = dataclasses.replace(settings, max_text_chars=200)
    async with AsyncTestClient(app=create_app(short)) as client:
        long_ticket = {"title": "Disk full", "body": "the disk on db-1 is full " * 100}
        response = await client.post("/v1/classify", json=long_ticket)
        assert response.status_code == 200
        assert response.json()["truncated"] is True
        assert "truncated" not in (await client.post("/v1/classify", json={"title": "Disk full"})).json()
        batch = await client.post("/v1/classify/batch", json={"items": [long_ticket, {"title": "Disk full"}]})
        assert [r.get("truncated", False) for r in batch.json()["results"]] == [True, False]


async def test_readiness_fails_when_the_database_breaks(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(settings)) as client:
        assert (await client.get("/readyz")).status_code == 200
        # Another process wrecks the database under the running service.
        with sqlite3.connect(settings.sqlite_path) as other:
            other.execute("DROP TABLE schema_migrations")
            other.execute("DROP TABLE decisions")
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.headers["content-type"] == "application/problem+json"
        assert "database" in ready.json()["detail"]
        assert (await client.get("/healthz")).status_code == 200
        failed = await client.post("/v1/classify", json=TICKET)
        assert failed.status_code == 503, "a decision that cannot be recorded is not answered"


async def test_webhook_events_are_counted_by_tracker_and_outcome(settings: Settings) -> None:
    secret = "metrics-secret"
    signed = replace_settings(settings, github_webhook_secret=secret, write_back="dry-run")
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "X-GitHub-Event": "ping", "X-GitHub-Delivery": "metrics-1"}
    async with AsyncTestClient(app=create_app(signed)) as client:
        before = _sample((await client.get("/metrics")).text, "github", "ignored")
        assert (
            await client.post(
                "/v1/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": signature}
            )
        ).status_code == 200
        rejected = await client.post(
            "/v1/webhooks/github", content=body, headers={**headers, "X-Hub-Signature-256": "sha256=00"}
        )
        assert rejected.status_code == 401
        text = (await client.get("/metrics")).text
    assert _sample(text, "github", "ignored") == before + 1
    assert _sample(text, "github", "rejected") >= 1


def _sample(text: str, tracker: str, outcome: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "ticket_router_webhook_events_total" and sample.labels == {
                "tracker": tracker,
                "outcome": outcome,
            }:
                return float(sample.value)
    return 0.0
