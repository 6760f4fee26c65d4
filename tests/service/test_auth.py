from __future__ import annotations

import dataclasses

import pytest
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.anyio

TICKET = {"title": "Disk full on db-1"}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer nope"}, 401),
        ({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer api-one"}, 200),
        ({"Authorization": "bearer api-two"}, 200),
        ({"Authorization": "Bearer admin-secret"}, 200),
    ],
)
async def test_classify_needs_a_token_once_tokens_are_configured(
    settings: Settings, headers: dict[str, str], status: int
) -> None:
    secured = dataclasses.replace(settings, api_tokens=("api-one", "api-two"), admin_token="admin-secret")
    async with AsyncTestClient(app=create_app(secured)) as client:
        for path, payload in [("/v1/classify", TICKET), ("/v1/classify/batch", {"items": [TICKET]})]:
            response = await client.post(path, json=payload, headers=headers)
            assert response.status_code == status, (path, response.text)
            if status == 401:
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert "api-one" not in response.text
        assert (await client.get("/v1/teams", headers=headers)).status_code == status
        assert (await client.get("/healthz")).status_code == 200, "probes stay open"


async def test_without_api_tokens_classification_is_open(client: AsyncTestClient) -> None:  # type: ignore[type-arg]
    assert (await client.post("/v1/classify", json=TICKET)).status_code == 200
