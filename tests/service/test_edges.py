"""The edges of the HTTP API: which bodies are read as JSON, duplicate keys, and the declared security."""

from __future__ import annotations

import dataclasses

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio

BODY = b'{"title": "Disk full on db-1"}'


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/v1/classify", "application/evil+json"),
        ("/v1/classify", "application/problem+json"),
        ("/v1/classify", "text/plain"),
        ("/v1/classify", None),
        ("/v1/classify/batch", "application/evil+json"),
        ("/v1/classify/batch", None),
        ("/v1/feedback", "application/vnd.anything+json"),
        ("/v1/feedback", None),
    ],
)
async def test_only_application_json_is_read_as_json(
    client: AsyncTestClient[Litestar], path: str, content_type: str | None
) -> None:
    content = b'{"items": [{"title": "Disk full on db-1"}]}' if path.endswith("batch") else BODY
    if path == "/v1/feedback":
        content = b'{"team": "SRE", "title": "Disk full on db-1"}'
    headers = {} if content_type is None else {"content-type": content_type}
    response = await client.post(path, content=content, headers=headers)
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
async def test_application_json_with_or_without_a_charset_is_read(
    client: AsyncTestClient[Litestar], content_type: str
) -> None:
    assert (await client.post("/v1/classify", content=BODY, headers={"content-type": content_type})).status_code == 200


async def test_duplicate_keys_are_read_last_wins_as_documented(client: AsyncTestClient[Litestar]) -> None:
    body = b'{"title": "Release workflow fails to publish the npm package", "title": "p99 latency above 2s"}'
    decided = await client.post("/v1/classify", content=body, headers={"content-type": "application/json"})
    alone = await client.post("/v1/classify", json={"title": "p99 latency above 2s"})
    assert decided.json()["scores"] == alone.json()["scores"]


async def test_the_openapi_document_declares_which_token_each_route_needs(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, api_tokens=("t",), admin_token="a"))
    async with AsyncTestClient(app=app) as client:
        document = (await client.get("/schema/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    assert schemes["adminToken"]["scheme"] == "bearer"
    paths = document["paths"]
    either = [{"apiToken": []}, {"adminToken": []}]
    admin = [{"adminToken": []}]
    assert paths["/v1/classify"]["post"]["security"] == either
    assert paths["/v1/classify/batch"]["post"]["security"] == either
    assert paths["/v1/teams"]["get"]["security"] == either
    assert paths["/v1/feedback"]["post"]["security"] == either
    assert paths["/v1/models"]["get"]["security"] == either
    assert paths["/v1/models"]["post"]["security"] == admin
    assert paths["/v1/models/{version}/activate"]["post"]["security"] == admin
    assert paths["/v1/writebacks/retry"]["post"]["security"] == admin
    assert "security" not in paths["/healthz"]["get"]
    assert "security" not in paths["/v1/webhooks/github"]["post"], "webhooks are signed, not token-protected"
