"""Write-back behaviour: retries on 429/5xx, rate-limit headers, failures stored and retried, claims, restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import msgspec
import pytest
import respx

from service.settings import Settings
from service.store import DeliveryRecord, Store, WritebackRecord, database_url_for, new_id
from service.trackers.base import PlannedRequest
from service.webhooks.outbound import RetryPolicy, Sender, wait_hint
from tests.service.webhook_kit import (
    admin,
    configured,
    github_headers,
    raw,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

LABELS = "https://api.github.com/repos/acme/shop/issues/12/labels"
COMMENTS = "https://api.github.com/repos/acme/shop/issues/12/comments"
BODY = raw("github", "issues_opened")


async def deliver(client: object) -> dict[str, object]:
    response = await client.post("/v1/webhooks/github", content=BODY, headers=github_headers(BODY))  # type: ignore[attr-defined]
    assert response.status_code == 200
    result: dict[str, object] = response.json()
    return result


@pytest.mark.parametrize(
    "first",
    [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"message": "slow down"}),
        httpx.Response(502, text="bad gateway"),
        httpx.Response(503, text="unavailable"),
        # GitHub's exhausted rate limit: 403 with remaining 0 and the reset time.
        httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}, json={}),
        httpx.ConnectTimeout("timed out"),
    ],
)
async def test_a_transient_failure_is_retried_within_the_attempt(
    settings: Settings, first: httpx.Response | Exception
) -> None:
    with respx.mock() as router:
        labels = router.post(LABELS).mock(side_effect=[first, httpx.Response(200, json=[])])
        async with serving(configured(settings)) as client:
            await deliver(client)
            [row] = await settle(client)
        assert labels.call_count == 2
        assert sent_json(labels.calls[0].request) == sent_json(labels.calls[1].request) == {"labels": ["team:sre"]}
    assert (row.status, row.attempts, row.last_error) == ("done", 1, None)


async def test_retry_after_is_honoured_and_backoff_grows_without_it() -> None:
    slept: list[float] = []

    async def record(delay: float) -> None:
        slept.append(delay)

    with respx.mock() as router:
        route = router.post(LABELS).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "7"}),
                httpx.Response(503),
                httpx.Response(200, json=[]),
            ]
        )
        async with httpx.AsyncClient() as client:
            sender = Sender(client, RetryPolicy(attempts=3, backoff=0.5, max_wait=30.0), sleep=record)
            response = await sender.send(PlannedRequest("POST", LABELS, {"labels": ["x"]}), {"X-Test": "1"})
        assert response.status_code == 200 and route.call_count == 3
        assert route.calls.last.request.headers["x-test"] == "1"
    assert slept[0] == 7.0, "the tracker's Retry-After"
    assert 0.0 <= slept[1] <= 1.0, "then full-jitter backoff: up to 0.5 * 2**1"


async def test_the_service_follows_retry_after_rather_than_its_backoff(settings: Settings) -> None:
    # With this backoff any wait of ours would exceed the longest inline wait and fail the write-back.
    cfg = configured(settings, writeback_backoff_seconds=1e9, writeback_max_wait_seconds=1.0)
    with respx.mock() as router:
        labels = router.post(LABELS).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json=[])]
        )
        async with serving(cfg) as client:
            await deliver(client)
            [row] = await settle(client)
        assert labels.call_count == 2
    assert row.status == "done"


async def test_a_long_retry_after_schedules_the_write_back_instead_of_waiting(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(LABELS).mock(return_value=httpx.Response(429, headers={"Retry-After": "120"}))
        async with serving(configured(settings, writeback_max_wait_seconds=5.0, writeback_retry_seconds=1.0)) as client:
            before = time.time()
            await deliver(client)
            [row] = await settle(client)
        assert labels.call_count == 1
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.next_attempt_at is not None and row.next_attempt_at >= before + 120
    assert "answered 429" in (row.last_error or "") and "asked to wait 120 s" in (row.last_error or "")


async def test_persistent_5xx_is_stored_as_failed_with_a_scheduled_retry(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(LABELS).mock(return_value=httpx.Response(500, text="boom"))
        async with serving(configured(settings, writeback_attempts=3, writeback_retry_seconds=600.0)) as client:
            before = time.time()
            await deliver(client)
            [row] = await settle(client)
        assert labels.call_count == 3, "bounded: three tries, then back to the scheduler"
    assert row.status == "failed" and row.attempts == 1
    assert row.next_attempt_at is not None and before + 600 <= row.next_attempt_at <= time.time() + 600
    assert row.last_error == f"POST {LABELS} answered 500: boom (after 3 attempts)"


async def test_a_refusal_is_not_retried_on_schedule_but_an_admin_retry_succeeds(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(LABELS).mock(
            side_effect=[httpx.Response(401, json={"message": "Bad credentials"}), httpx.Response(200, json=[])]
        )
        async with serving(configured(settings)) as client:
            await deliver(client)
            [failed] = await settle(client)
            assert (failed.status, failed.next_attempt_at, labels.call_count) == ("failed", None, 1)
            assert "answered 401" in (failed.last_error or "")
            assert "ghp_example_token" not in (failed.last_error or ""), "no secret in stored errors"

            listed = (await client.get("/v1/writebacks", params={"status": "failed"}, headers=admin())).json()
            assert [w["id"] for w in listed["writebacks"]] == [failed.id]
            assert listed["writebacks"][0]["requests"] == [
                {
                    "method": "POST",
                    "url": LABELS,
                    "json": {"labels": ["team:sre"]},
                    "ok": [200, 201, 204],
                    "marker": None,
                    "probe": None,
                }
            ]

            retried = await client.post("/v1/writebacks/retry", json={"ids": [failed.id]}, headers=admin())
            assert retried.status_code == 202, retried.text
            assert retried.json()["scheduled"] == 1
            [state] = retried.json()["writebacks"]
            assert (state["id"], state["status"]) == (failed.id, "pending"), "answered at once, sent in the background"
            [done] = await settle(client)
            assert (done.status, done.attempts, done.last_error) == ("done", 2, None)
        assert labels.call_count == 2


async def test_a_retry_repeats_only_the_requests_that_did_not_succeed(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(LABELS).mock(return_value=httpx.Response(200, json=[]))
        comments = router.post(COMMENTS).mock(
            side_effect=[httpx.Response(404, json={"message": "Not Found"}), httpx.Response(201, json={})]
        )
        # Before sending the comment again, the worker looks whether the tracker has it after all.
        probe = router.get(url__startswith=COMMENTS).mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings, write_back="label+comment")) as client:
            await deliver(client)
            [failed] = await settle(client)
            assert failed.status == "failed"
            assert [r["url"] for r in msgspec.json.decode(failed.request)] == [COMMENTS]
            retried = (await client.post("/v1/writebacks/retry", headers=admin())).json()
            assert retried["scheduled"] == 1
            [done] = await settle(client)
        assert done.status == "done"
        assert (labels.call_count, comments.call_count, probe.call_count) == (1, 2, 1)


@pytest.mark.parametrize(("headers", "status"), [({}, 401), ({"Authorization": "Bearer nope"}, 401)])
async def test_the_write_back_admin_endpoints_need_the_admin_token(
    settings: Settings, headers: dict[str, str], status: int
) -> None:
    async with serving(configured(settings)) as client:
        for method, path in [
            ("GET", "/v1/writebacks"),
            ("POST", "/v1/writebacks/retry"),
            ("GET", "/v1/webhooks/deliveries"),
        ]:
            response = await client.request(method, path, headers=headers)
            assert response.status_code == status, path
            assert response.headers["content-type"] == "application/problem+json"


async def test_deliveries_are_listed_with_their_outcome_and_reason(settings: Settings) -> None:
    ping = raw("github", "ping")
    async with serving(configured(settings)) as client:
        await client.post("/v1/webhooks/github", content=ping, headers=github_headers(ping, "ping", "p-1"))
        listed = (await client.get("/v1/webhooks/deliveries", params={"outcome": "ignored"}, headers=admin())).json()
    [delivery] = listed["deliveries"]
    assert (delivery["delivery_id"], delivery["event"], delivery["reason"]) == (
        "p-1",
        "ping",
        "ping: the hook is set up",
    )


async def test_the_answer_does_not_wait_for_the_write_back(settings: Settings) -> None:
    gate = asyncio.Event()

    async def slow_tracker(request: httpx.Request) -> httpx.Response:
        await gate.wait()
        return httpx.Response(200, json=[])

    with respx.mock() as router:
        labels = router.post(LABELS).mock(side_effect=slow_tracker)
        async with serving(configured(settings)) as client:
            result = await asyncio.wait_for(deliver(client), timeout=5)
            assert result["write_back"] == "pending"
            for _ in range(200):  # the tracker is being called while we have long answered
                if labels.call_count:
                    break
                await asyncio.sleep(0.01)
            [row] = store_of(client).outbox.list_writebacks()
            assert row.status == "pending" and row.claimed_until is not None
            gate.set()
            [row] = await settle(client)
        assert row.status == "done"


async def test_pending_write_backs_are_resumed_at_start_up(settings: Settings) -> None:
    cfg = configured(settings)
    store = Store.open(database_url_for(cfg.database_url, cfg.sqlite_path))
    now = time.time()
    planned = [PlannedRequest("POST", LABELS, {"labels": ["team:sre"]})]
    row = WritebackRecord(
        id=new_id(),
        created_at=now,
        updated_at=now,
        tracker="github",
        ticket_ref="github:acme/shop#12",
        request=msgspec.json.encode(planned).decode(),
        status="pending",
        label="team:sre",
        next_attempt_at=now,
    )
    delivery = DeliveryRecord("github", "left-over", now, "issues", "classified", "opened", row.ticket_ref)
    assert store.outbox.record_delivery(delivery, row)
    store.close()
    with respx.mock() as router:
        labels = router.post(LABELS).mock(return_value=httpx.Response(200, json=[]))
        async with serving(cfg) as client:
            [done] = await settle(client)
        assert labels.call_count == 1
    assert (done.id, done.status) == (row.id, "done")


def test_a_write_back_is_claimed_by_one_caller_only(settings: Settings) -> None:
    store = Store.open(database_url_for(None, settings.sqlite_path))
    now = time.time()
    row = WritebackRecord(
        id=new_id(),
        created_at=now,
        updated_at=now,
        tracker="github",
        ticket_ref="github:a/b#1",
        request="[]",
        status="pending",
        next_attempt_at=now,
    )
    assert store.outbox.record_delivery(DeliveryRecord("github", "d", now, "issues", "classified"), row)
    try:
        assert [r.id for r in store.outbox.claim_writebacks(now, 60)] == [row.id]
        assert store.outbox.claim_writebacks(now, 60) == [], "a live claim keeps other workers off"
        assert [r.id for r in store.outbox.claim_writebacks(now + 61, 60)] == [row.id], "an expired lease frees the row"
        assert not store.outbox.record_delivery(DeliveryRecord("github", "d", now, "issues", "ignored")), (
            "same delivery id"
        )
        assert store.outbox.prune_deliveries(now + 1) == 1 and store.outbox.get_delivery("github", "d") is None
    finally:
        store.close()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": formatdate(1_000_060, usegmt=True)}, 60.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000045"}, 45.0),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "1000010"}, 10.0),  # GitLab
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1970-01-12T13:47:00Z"}, 20.0),  # Jira: ISO 8601
        ({"x-ratelimit-remaining": "12", "x-ratelimit-reset": "1000045"}, None),
        ({}, None),
    ],
)
def test_wait_hints_from_the_trackers_headers(headers: dict[str, str], expected: float | None) -> None:
    assert wait_hint(httpx.Response(429, headers=headers), now=1_000_000.0) == expected


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A private, temporary PostgreSQL database (skipped when no server answers)."""
    import os
    import secrets

    psycopg = pytest.importorskip("psycopg")
    base = os.environ.get("TICKET_ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        admin_conn = psycopg.connect(base, connect_timeout=2, autocommit=True)
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL server at {base}: {exc}")
    name = f"tr_webhooks_{secrets.token_hex(4)}"
    admin_conn.execute(f"CREATE DATABASE {name}")
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin_conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin_conn.close()


@pytest.mark.postgres
def test_deliveries_and_claims_on_postgresql(postgres_url: str) -> None:
    store = Store.open(database_url_for(postgres_url, Path("unused")))
    now = time.time()
    row = WritebackRecord(
        id=new_id(),
        created_at=now,
        updated_at=now,
        tracker="gitlab",
        ticket_ref="gitlab:15#23",
        request="[]",
        status="pending",
        label="team::devops",
        next_attempt_at=now,
    )
    try:
        assert store.outbox.record_delivery(DeliveryRecord("gitlab", "k-1", now, "Issue Hook", "classified"), row)
        assert not store.outbox.record_delivery(DeliveryRecord("gitlab", "k-1", now, "Issue Hook", "ignored"), row)
        assert store.outbox.our_labels("gitlab", "gitlab:15#23") == {"team::devops"}
        [claimed] = store.outbox.claim_writebacks(now, 60)
        assert claimed.id == row.id and store.outbox.claim_writebacks(now, 60) == []
        store.outbox.finish_writeback(row.id, "failed", 1, "boom", None)
        assert store.outbox.retry_writebacks(now) == [row.id]
        assert [r.status for r in store.outbox.list_writebacks()] == ["pending"]
    finally:
        store.close()
