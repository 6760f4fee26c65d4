"""Rate limits by identity, the failed-authentication budget, bounded memory, and the limit of work in progress."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.auth import TokenBook
from service.forwarded import ForwardedMiddleware, TrustedProxies
from service.ratelimit import Budget, RateLimit
from service.settings import Settings

pytestmark = pytest.mark.anyio

TICKET = {"title": "Disk full on db-1"}


def limited(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, api_tokens=("token-one", "token-two"), admin_token="admin-secret", **changes)


@pytest.mark.parametrize(
    "spellings",
    [
        ["Bearer token-one", "bearer token-one", "BEARER token-one", "Bearer   token-one  ", "  Bearer token-one"],
    ],
)
async def test_one_token_is_one_client_however_it_is_spelled(settings: Settings, spellings: list[str]) -> None:
    async with AsyncTestClient(app=create_app(limited(settings, rate_limit="5/minute"))) as client:
        statuses = [
            (await client.post("/v1/classify", json=TICKET, headers={"Authorization": spelling})).status_code
            for spelling in spellings * 2
        ]
        assert statuses == [200] * 5 + [429] * 5
        other = await client.post("/v1/classify", json=TICKET, headers={"Authorization": "Bearer token-two"})
        assert other.status_code == 200, "another token has its own budget"


async def test_wrong_tokens_are_throttled_by_address(settings: Settings) -> None:
    app = create_app(limited(settings, rate_limit="1000/minute", auth_failure_limit="10/minute"))
    async with AsyncTestClient(app=app) as client:
        statuses = [
            (await client.post("/v1/classify", json=TICKET, headers={"Authorization": f"Bearer guess-{i}"})).status_code
            for i in range(30)
        ]
        assert statuses == [401] * 10 + [429] * 20
        refused = await client.post("/v1/classify", json=TICKET, headers={"Authorization": "Bearer guess-x"})
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        # Blocked means blocked: a right token from the same address learns nothing either.
        right = await client.post("/v1/classify", json=TICKET, headers={"Authorization": "Bearer token-one"})
        assert right.status_code == 429
        assert (await client.get("/healthz")).status_code == 200, "probes are never limited"


async def test_absent_tokens_share_their_address_budget(settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(limited(settings, rate_limit="3/minute"))) as client:
        statuses = [(await client.post("/v1/classify", json=TICKET)).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


async def test_a_hundred_thousand_bogus_tokens_leave_the_limiter_flat(settings: Settings) -> None:
    """Every request goes through the limiter itself; its store must not grow with the distinct tokens."""
    frozen = lambda: 0.0  # noqa: E731 - the budgets must not refill while the loop runs
    limiter = RateLimit(
        TokenBook(("token-one",), "admin"), Budget(100, 1.0, 1000, frozen), Budget(20, 60.0, 1000, frozen)
    )
    answered: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            answered.append(message["status"])

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    sizes = []
    for i in range(100_000):
        scope = {
            "type": "http",
            "path": "/v1/classify",
            "method": "POST",
            "headers": [(b"authorization", f"Bearer bogus-{i}".encode())],
            "client": ("203.0.113.7", 50000),
            "query_string": b"",
            "app": None,
        }
        await limiter.handle(scope, receive, send, app)  # type: ignore[arg-type]
        if i % 10_000 == 0:
            sizes.append((len(limiter.requests or ()), len(limiter.failures or ())))
    assert sizes[-1] == sizes[1] == (1, 1), "one address, one key in each budget, whatever the tokens"
    assert answered.count(401) == 20 and answered.count(429) == 100_000 - 20


def test_the_store_is_bounded_however_many_clients_there_are() -> None:
    now = [0.0]
    budget = Budget(10, 60.0, max_keys=1000, clock=lambda: now[0])
    for i in range(100_000):
        budget.spend(f"address:10.{i // 65536}.{i // 256 % 256}.{i % 256}")
        now[0] += 0.0001
    assert len(budget) == 1000
    now[0] += 120  # everyone's budget is whole again: keys go as they are seen
    for i in range(10):
        budget.spend(f"late-{i}")
    assert len(budget) < 1000


def test_a_budget_refills_at_its_rate() -> None:
    now = [0.0]
    budget = Budget(2, 10.0, 100, clock=lambda: now[0])
    assert [budget.spend("k") for _ in range(3)] == [0.0, 0.0, pytest.approx(5.0)]
    now[0] = 5.0
    assert budget.spend("k") == 0.0, "one unit back after period / count"


@pytest.mark.parametrize(
    ("trusted", "peer", "forwarded", "client"),
    [
        ("127.0.0.1", "127.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("127.0.0.1", "127.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the right-most untrusted hop
        ("127.0.0.1,10.0.0.0/8", "10.1.2.3", "203.0.113.7, 10.9.9.9", "203.0.113.7"),
        ("127.0.0.1", "198.51.100.9", "203.0.113.7", "198.51.100.9"),  # an untrusted peer cannot pick its address
        ("*", "198.51.100.9", "203.0.113.7, 10.0.0.1", "203.0.113.7"),
    ],
)
async def test_the_client_address_comes_from_a_trusted_proxy_only(
    trusted: str, peer: str, forwarded: str, client: str
) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    scope = {"type": "http", "client": (peer, 1234), "headers": [(b"x-forwarded-for", forwarded.encode())]}
    await ForwardedMiddleware(app, TrustedProxies(trusted))(scope, None, None)  # type: ignore[arg-type]
    assert seen == [client]
