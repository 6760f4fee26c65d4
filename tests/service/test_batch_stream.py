"""NDJSON streaming on /v1/classify/batch: any number of lines in, one decision (or error) line out each."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.store import Store, database_url_for
from tests.server_kit import fresh_env, running_server

pytestmark = pytest.mark.anyio

NDJSON = {"content-type": "application/x-ndjson"}
TICKETS = [
    {"id": "OPS-1", "title": "Pods OOMKilled in production", "body": "memory alert firing"},
    {"id": "OPS-2", "title": "CI pipeline fails on npm ci"},
    {"id": 3, "text": "Checkout total ignores the discount code"},
]


def small(settings: Settings, **changes: Any) -> Settings:
    fields = {f: getattr(settings, f) for f in settings.__dataclass_fields__}
    return Settings(**{**fields, **changes})


def lines_of(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines()]


async def test_stream_answers_line_by_line_in_order(client: AsyncTestClient[Litestar]) -> None:
    body = "\n".join(json.dumps(t) for t in TICKETS) + "\n"
    response = await client.post("/v1/classify/batch", content=body.encode(), headers=NDJSON)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    out = lines_of(response)
    assert [line["id"] for line in out] == ["OPS-1", "OPS-2", "3"]
    assert [line["team"] for line in out] == ["SRE", "DevOps", "Development"]
    assert all(sum(line["scores"].values()) == pytest.approx(1.0) for line in out)
    assert all(line["model_version"] == out[0]["model_version"] for line in out)


async def test_bad_lines_become_error_lines_and_the_rest_is_decided(
    client: AsyncTestClient[Litestar], settings: Settings
) -> None:
    body = b"\n".join(
        [
            json.dumps(TICKETS[0]).encode(),
            b"",  # blank lines are skipped but still counted
            b"{broken json",
            json.dumps({"title": "   "}).encode(),
            json.dumps({"title": "x", "colour": "red"}).encode(),
            b'{"title": "\xff\xfe"}',
            b"[" * 50_000 + b"]" * 50_000,
            json.dumps(TICKETS[1]).encode(),
        ]
    )  # and no newline after the last line
    response = await client.post("/v1/classify/batch", content=body, headers=NDJSON)
    assert response.status_code == 200
    out = lines_of(response)
    assert len(out) == 7
    assert out[0]["id"] == "OPS-1" and out[-1]["id"] == "OPS-2"
    errors = out[1:6]
    assert [e["line"] for e in errors] == [3, 4, 5, 6, 7]
    assert errors[0]["error"] == "not a JSON object"
    assert errors[1]["error"].startswith("invalid ticket") and "empty" in errors[1]["error"]
    assert "colour" in errors[2]["error"]
    assert errors[3]["error"] == "not a JSON object"  # invalid UTF-8
    assert errors[4]["error"].startswith(("not a JSON object", "invalid ticket"))
    store = Store.open(database_url_for(settings.database_url, settings.sqlite_path))
    try:
        assert store.audit.count() == 2, "only the decided lines are in the audit trail"
        assert {r.source for r in store.audit.recent()} == {"batch"}
    finally:
        store.close()


async def test_stream_is_not_bound_by_the_batch_or_body_limits(settings: Settings) -> None:
    limited = small(settings, batch_limit=5, max_body_bytes=4096)
    lines = [
        json.dumps({"id": str(n), "title": f"Disk full on db-{n}", "body": "writes failing " * 4}) for n in range(600)
    ]
    body = ("\n".join(lines) + "\n").encode()
    assert len(body) > 10 * limited.max_body_bytes
    async with AsyncTestClient(app=create_app(limited)) as client:
        refused = await client.post(
            "/v1/classify/batch",
            json={"items": [json.loads(line) for line in lines]},
        )
        assert refused.status_code == 413
        assert "x-ndjson" in refused.json()["detail"]
        response = await client.post("/v1/classify/batch", content=body, headers=NDJSON)
    assert response.status_code == 200
    out = lines_of(response)
    assert [line["id"] for line in out] == [str(n) for n in range(600)]
    assert all("error" not in line for line in out)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(fresh_env(tmp_path_factory.mktemp("stream"), TICKET_ROUTER_MAX_BODY_BYTES="1024")) as url:
        yield url


def test_chunks_split_anywhere_and_an_overlong_line_is_an_error_line(server: str) -> None:
    """Over real HTTP with chunked transfer: lines cut anywhere, one far over the body limit."""
    body = b"\n".join(
        [
            json.dumps(TICKETS[0]).encode(),
            json.dumps({"title": "y" * 5000}).encode(),
            json.dumps({"title": "Disk full on db-1 \u00e9t\u00e9"}, ensure_ascii=False).encode(),
        ]
    )

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7):  # lines cut mid-token and mid-character
            yield body[start : start + 7]

    response = httpx.post(f"{server}/v1/classify/batch", content=chunks(), headers=NDJSON, timeout=30)
    assert response.status_code == 200
    assert response.headers.get("transfer-encoding") == "chunked"
    out = lines_of(response)
    assert len(out) == 3
    assert out[0]["id"] == "OPS-1" and out[2]["team"] == "SRE"
    assert out[1] == {"line": 2, "error": "line longer than 1024 bytes"}


async def test_an_empty_stream_is_an_empty_answer(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/v1/classify/batch", content=b"\n\n", headers=NDJSON)
    assert response.status_code == 200 and response.text == ""


async def test_stream_without_a_model_is_503_before_reading(empty_settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(empty_settings)) as client:
        response = await client.post("/v1/classify/batch", content=json.dumps(TICKETS[0]).encode(), headers=NDJSON)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_stream_needs_the_api_token_when_tokens_are_configured(settings: Settings) -> None:
    guarded = small(settings, api_tokens=("s3cret-token",))
    async with AsyncTestClient(app=create_app(guarded)) as client:
        denied = await client.post("/v1/classify/batch", content=json.dumps(TICKETS[0]).encode(), headers=NDJSON)
        allowed = await client.post(
            "/v1/classify/batch",
            content=json.dumps(TICKETS[0]).encode(),
            headers={**NDJSON, "authorization": "Bearer s3cret-token"},
        )
    assert denied.status_code == 401
    assert allowed.status_code == 200 and lines_of(allowed)[0]["id"] == "OPS-1"


async def test_a_whole_overlong_line_in_one_chunk_is_an_error_line(settings: Settings) -> None:
    body = b"\n".join([json.dumps({"title": "y" * 3000}).encode(), b'{"title": "Disk full on db-1"}'])
    async with AsyncTestClient(app=create_app(small(settings, max_body_bytes=1024))) as client:
        response = await client.post("/v1/classify/batch", content=body, headers=NDJSON)
    first, second = lines_of(response)
    assert first == {"line": 1, "error": "line longer than 1024 bytes"}
    assert second["team"] == "SRE"
