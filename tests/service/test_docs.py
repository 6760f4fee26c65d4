"""The API docs work offline (every script and style from the service itself) and show real examples."""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

TEAMS = {"Development", "DevOps", "SRE", "Platform"}


@pytest.mark.parametrize("page", ["/schema", "/schema/swagger"])
async def test_the_docs_ui_loads_nothing_from_the_internet(client: AsyncTestClient[Litestar], page: str) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text)
    assert len(assets) >= 3
    assert not [a for a in assets if "://" in a or a.startswith("//")], "no CDN"
    for asset in assets:
        served = await client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 500
        assert "max-age" in served.headers["cache-control"]


async def test_the_docs_ui_reads_the_openapi_version_we_serve(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    # Swagger UI 4 says "Unable to render this definition" for OpenAPI 3.1; version 5 reads it.
    bundle = (await client.get("/schema/assets/swagger-ui-bundle.js")).text
    assert "openapi;version=3.1" in bundle


def examples(node: Any) -> list[Any]:
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "examples":
                found += list(value.values()) if isinstance(value, dict) else list(value)
            elif key == "example":
                found.append(value)
            else:
                found += examples(value)
    elif isinstance(node, list):
        for value in node:
            found += examples(value)
    return found


def decisions(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        own = [node] if "team" in node else []
        return own + [d for value in node.values() for d in decisions(value)]
    if isinstance(node, list):
        return [d for value in node for d in decisions(value)]
    return []


async def test_openapi_examples_are_real_tickets_and_decisions(client: AsyncTestClient[Litestar]) -> None:
    document = (await client.get("/schema/openapi.json")).json()
    found = examples(document)
    assert len(found) >= 8
    teams = decisions(found)
    assert len(teams) >= 5
    for decision in teams:
        assert decision["team"] in TEAMS, decision
        if "confidence" in decision:
            assert 0.0 <= decision["confidence"] <= 1.0
            assert set(decision["scores"]) == TEAMS
            assert abs(sum(decision["scores"].values()) - 1.0) < 0.01
    text = str(found)
    assert not re.search(r"'[A-Za-z]{20}'", text), "no generated random strings"
