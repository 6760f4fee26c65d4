from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.store import Store, database_url_for

pytestmark = pytest.mark.anyio

DEEP = b'{"title": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
DEEP_BATCH = b'{"items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
SRE_TICKET = {"title": "Pods OOMKilled in production", "body": "memory limit too low, alert firing, customers see 503"}


def store_of(settings: Settings) -> Store:
    return Store.open(database_url_for(settings.database_url, settings.sqlite_path))


async def test_classify_returns_the_decision_object(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.post("/v1/classify", json=SRE_TICKET)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"team", "confidence", "abstained", "scores", "explanation", "model_version"}
    assert body["team"] == "SRE"
    assert list(body["scores"]) == ["Development", "DevOps", "SRE", "Platform"]
    assert sum(body["scores"].values()) == pytest.approx(1.0)
    assert body["confidence"] == body["scores"]["SRE"]
    assert body["model_version"] == (settings.registry_dir / "ACTIVE").read_text().strip()
    assert all(set(t) == {"term", "weight"} for t in body["explanation"])
    assert response.headers["x-decision-id"]


async def test_text_stands_for_title_and_body(client: AsyncTestClient[Litestar]) -> None:
    split = (await client.post("/v1/classify", json={"title": "Terraform plan fails", "body": ""})).json()
    joined = (await client.post("/v1/classify", json={"text": "Terraform plan fails"})).json()
    assert split["scores"] == joined["scores"]


async def test_every_decision_is_in_the_audit_trail(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    response = await client.post("/v1/classify", json=SRE_TICKET)
    decision_id = response.headers["x-decision-id"]
    await client.post(
        "/v1/classify/batch", json={"items": [{"title": "a flaky test blocks CI"}, {"text": "disk full"}]}
    )
    store = store_of(settings)
    try:
        record = store.audit.get(decision_id)
        assert record is not None
        assert record.source == "api"
        assert record.team == response.json()["team"]
        assert record.confidence == response.json()["confidence"]
        assert record.model_version == response.json()["model_version"]
        assert len(record.text_sha256) == 64 and "OOMKilled" not in record.text_sha256
        assert record.created_at > 0
        assert store.audit.count() == 3
        assert [r.source for r in store.audit.recent()].count("batch") == 2
    finally:
        store.close()


async def test_batch_keeps_input_order_and_ids(client: AsyncTestClient[Litestar]) -> None:
    items: list[dict[str, Any]] = [
        {"id": "a", **SRE_TICKET},
        {"id": 7, "title": "Upgrade the EKS clusters to Kubernetes 1.30"},
        {"text": "CI pipeline fails on npm ci"},
        {"id": "d", "title": "Checkout total ignores the discount code"},
    ]
    response = await client.post("/v1/classify/batch", json={"items": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r.get("id") for r in results] == ["a", "7", None, "d"]
    assert [r["team"] for r in results] == ["SRE", "Platform", "DevOps", "Development"]
    single = (await client.post("/v1/classify", json=SRE_TICKET)).json()
    assert results[0]["scores"] == pytest.approx(single["scores"], abs=1e-12)


async def test_concurrent_requests_all_succeed(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    responses = await asyncio.gather(
        *(client.post("/v1/classify", json={"title": f"ticket {i} disk full"}) for i in range(40))
    )
    assert {r.status_code for r in responses} == {200}
    store = store_of(settings)
    try:
        assert store.audit.count() == 40
    finally:
        store.close()


async def test_teams_and_models(client: AsyncTestClient[Litestar], settings: Settings) -> None:
    teams = (await client.get("/v1/teams")).json()
    assert [t["id"] for t in teams["teams"]] == ["Development", "DevOps", "SRE", "Platform"]
    assert teams["teams"][2]["labels"] == {"github": "team:sre", "gitlab": "team::sre", "jira": "team-sre"}
    models = (await client.get("/v1/models")).json()
    [summary] = models["models"]
    assert summary["active"] is True and models["active"] == summary["version"]
    assert summary["macro_f1"] is not None and summary["n_examples"] == 48
    detail = (await client.get(f"/v1/models/{summary['version']}")).json()
    assert detail["active"] is True
    manifest = detail["manifest"]
    assert manifest["artifact_sha256"] and manifest["data_sha256"] and manifest["libraries"]["scikit-learn"]
    assert manifest["report"]["cv"]["confusion"]


async def test_health_and_readiness(client: AsyncTestClient[Litestar]) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"]


async def test_without_a_model_the_service_is_live_but_not_ready(empty_settings: Settings) -> None:
    async with AsyncTestClient(app=create_app(empty_settings)) as client:
        assert (await client.get("/healthz")).status_code == 200
        for method, path, payload in [
            ("get", "/readyz", None),
            ("post", "/v1/classify", {"title": "x"}),
            ("post", "/v1/classify/batch", {"items": [{"title": "x"}]}),
            ("get", "/v1/teams", None),
        ]:
            response = await getattr(client, method)(path, **({"json": payload} if payload else {}))
            assert response.status_code == 503, path
            assert response.headers["content-type"] == "application/problem+json"
            assert "train" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("post", "/v1/classify", {"content": b"{bad json", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify", {"content": b"", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify", {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify", {"json": {"title": ""}}, 422),
        ("post", "/v1/classify", {"json": {"title": "  ", "body": "\n"}}, 422),
        ("post", "/v1/classify", {"json": {}}, 422),
        ("post", "/v1/classify", {"json": {"title": "x", "colour": "red"}}, 422),
        ("post", "/v1/classify", {"json": {"title": 12}}, 422),
        ("post", "/v1/classify", {"json": {"text": "x", "title": "y"}}, 422),
        ("post", "/v1/classify", {"json": ["title"]}, 422),
        ("post", "/v1/classify", {"content": b"x" * 2_000_000, "headers": {"content-type": "application/json"}}, 413),
        ("post", "/v1/classify", {"content": b'{"title": "x"}', "headers": {"content-type": "text/plain"}}, 415),
        ("post", "/v1/classify", {"content": b"title=x"}, 415),
        (
            "post",
            "/v1/classify",
            {"content": b'{"title": "\xff\xfe"}', "headers": {"content-type": "application/json"}},
            400,
        ),
        ("post", "/v1/classify", {"content": DEEP, "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify/batch", {"content": DEEP_BATCH, "headers": {"content-type": "application/json"}}, 422),
        ("post", "/v1/classify/batch", {"content": b"{", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify/batch", {"content": b"", "headers": {"content-type": "application/json"}}, 400),
        ("post", "/v1/classify/batch", {"json": {"items": []}}, 422),
        ("post", "/v1/classify/batch", {"json": {"items": [{"title": ""}]}}, 422),
        ("post", "/v1/classify/batch", {"json": {"items": [{"title": "x"}], "extra": 1}}, 422),
        ("post", "/v1/classify/batch", {"json": {"items": [{"title": "x"}] * 6}}, 413),
        ("post", "/v1/classify/batch", {"content": b"title=x", "headers": {"content-type": "text/plain"}}, 415),
        ("get", "/v1/models/20991231T000000Z-abcdef", {}, 404),
        ("get", "/v1/models/..%2F..%2Fetc", {}, 404),
        ("get", "/v1/nothing-here", {}, 404),
        ("delete", "/v1/classify", {}, 405),
    ],
)
async def test_errors_are_problem_json(
    settings: Settings, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    small = Settings(**{**_fields(settings), "batch_limit": 5})
    async with AsyncTestClient(app=create_app(small)) as client:
        response = await getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].startswith("urn:ticket-router:problem:")
    assert problem["title"] and problem["detail"]


def _fields(settings: Settings) -> dict[str, Any]:
    return {f: getattr(settings, f) for f in settings.__dataclass_fields__}


async def test_openapi_documents_every_route_with_examples(client: AsyncTestClient[Litestar]) -> None:
    spec = (await client.get("/schema/openapi.json")).json()
    paths = spec["paths"]
    for path in [
        "/v1/classify",
        "/v1/classify/batch",
        "/v1/teams",
        "/v1/models",
        "/v1/models/{version}",
        "/healthz",
        "/readyz",
    ]:
        assert path in paths, path
    classify = paths["/v1/classify"]["post"]
    request = classify["requestBody"]["content"]["application/json"]
    assert request.get("examples") or request["schema"].get("examples")
    assert classify["responses"]["200"]["content"]["application/json"]["examples"]
    batch = paths["/v1/classify/batch"]["post"]
    batch_schema = batch["requestBody"]["content"]["application/json"]["schema"]
    assert batch_schema["properties"]["items"]["type"] == "array"
    assert batch["requestBody"]["content"]["application/json"]["examples"]
    assert json.dumps(spec)  # serialisable as a whole


async def test_the_repository_in_context_is_read_as_evidence(client: AsyncTestClient[Litestar]) -> None:
    ticket = {"title": "Update README.md"}
    alone = (await client.post("/v1/classify", json=ticket)).json()
    placed = {**ticket, "context": {"repository": "acme/alertmanager-rules", "tracker": "github", "labels": ["docs"]}}
    there = (await client.post("/v1/classify", json=placed)).json()
    assert there["scores"] != alone["scores"]
    assert there["scores"]["SRE"] > alone["scores"]["SRE"], "'alertmanager' in the repository is SRE evidence"
    batch = await client.post("/v1/classify/batch", json={"items": [{**placed, "id": "x"}, ticket]})
    assert [r["scores"] for r in batch.json()["results"]] == [there["scores"], alone["scores"]]


@pytest.mark.parametrize(
    "context",
    [{"repository": ""}, {"repo": "a/b"}, {"labels": "bug"}, {"repository": "x" * 301}, {"labels": [""]}],
)
async def test_a_bad_context_is_refused_naming_the_field(client: AsyncTestClient[Litestar], context: object) -> None:
    response = await client.post("/v1/classify", json={"title": "Disk full", "context": context})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "context" in response.json()["detail"]
