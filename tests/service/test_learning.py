"""The learning loop: feedback, training jobs, the promotion gate, hot swap, shadow mode, taxonomy changes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from model.pipeline import PipelineParams
from model.registry import Registry
from model.training import TrainingParams
from service.app import create_app
from service.settings import Settings
from service.store import Store, database_url_for
from service.trainer import train_version

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": "Bearer admin-secret"}
TICKET = {"title": "Pods OOMKilled in production", "body": "memory limit too low, alert firing"}


@pytest.fixture
def admin_settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, admin_token="admin-secret")


@pytest.fixture
async def admin_client(admin_settings: Settings) -> Any:
    async with AsyncTestClient(app=create_app(admin_settings)) as client:
        client.headers.update(ADMIN)
        yield client


NO_AUTH = {"Authorization": ""}
# Without the taxonomy's documents and with rare terms dropped: clearly worse on the small set.
WORSE = TrainingParams(prior_weight=0.0, pipeline=PipelineParams(min_df=3))


def open_store(settings: Settings) -> Store:
    return Store.open(database_url_for(settings.database_url, settings.sqlite_path))


async def classify(client: AsyncTestClient[Litestar], ticket: dict[str, str] = TICKET) -> tuple[str, dict[str, Any]]:
    response = await client.post("/v1/classify", json=ticket)
    assert response.status_code == 200
    return response.headers["x-decision-id"], response.json()


async def wait_for_job(client: AsyncTestClient[Litestar], job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = (await client.get(f"/v1/jobs/{job_id}", headers=ADMIN)).json()
        if job["status"] in {"succeeded", "failed"}:
            return job  # type: ignore[no-any-return]
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


# -- feedback -----------------------------------------------------------------------------


async def test_feedback_on_a_decision_with_and_without_text(admin_client: AsyncTestClient[Litestar]) -> None:
    decision_id, decision = await classify(admin_client)
    bare = await admin_client.post(
        "/v1/feedback", json={"decision_id": decision_id, "team": "Platform", "actor": "ana"}
    )
    assert bare.status_code == 201, bare.text
    body = bare.json()
    assert (body["team"], body["previous_team"], body["source"], body["actor"]) == (
        "Platform",
        decision["team"],
        "api",
        "ana",
    )
    assert body["trainable"] is False, "without the text a correction cannot train"
    with_text = await admin_client.post("/v1/feedback", json={"decision_id": decision_id, "team": "Platform", **TICKET})
    assert with_text.json()["trainable"] is True
    by_text = await admin_client.post(
        "/v1/feedback", json={"text": "Upgrade ingress-nginx on every cluster", "team": "Platform"}
    )
    assert by_text.status_code == 201
    assert by_text.json()["decision_id"] is None and by_text.json()["trainable"] is True


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"team": "Marketing", "text": "anything"}, 422),
        ({"team": "SRE"}, 422),
        ({"text": "disk full"}, 422),
        ({"team": "SRE", "decision_id": "0" * 32}, 404),
        ({"team": "SRE", "text": "x", "colour": "red"}, 422),
        ({"team": "SRE", "decision_id": "@", "title": "a", "text": "b"}, 422),
    ],
)
async def test_feedback_errors(admin_client: AsyncTestClient[Litestar], payload: dict[str, Any], status: int) -> None:
    response = await admin_client.post("/v1/feedback", json=payload)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_feedback_text_must_match_the_decision(admin_client: AsyncTestClient[Litestar]) -> None:
    decision_id, _ = await classify(admin_client)
    response = await admin_client.post(
        "/v1/feedback", json={"decision_id": decision_id, "team": "SRE", "title": "another ticket entirely"}
    )
    assert response.status_code == 422
    assert "does not match" in response.json()["detail"]


async def test_feedback_listing_pages_newest_first(admin_client: AsyncTestClient[Litestar]) -> None:
    ids = []
    for i in range(5):
        response = await admin_client.post("/v1/feedback", json={"text": f"ticket number {i} disk full", "team": "SRE"})
        ids.append(response.json()["id"])
    first = (await admin_client.get("/v1/feedback", params={"limit": 2})).json()
    assert [item["id"] for item in first["items"]] == ids[::-1][:2]
    second = (await admin_client.get("/v1/feedback", params={"limit": 2, "before": first["next"]})).json()
    third = (await admin_client.get("/v1/feedback", params={"limit": 2, "before": second["next"]})).json()
    assert [i["id"] for i in second["items"] + third["items"]] == ids[::-1][2:]
    assert third["next"] is None
    assert (await admin_client.get("/v1/feedback", params={"limit": 0})).status_code == 422


async def test_feedback_needs_a_token_once_tokens_exist(settings: Settings) -> None:
    secured = dataclasses.replace(settings, api_tokens=("api-one",), admin_token="admin-secret")
    async with AsyncTestClient(app=create_app(secured)) as client:
        payload = {"text": "disk full", "team": "SRE"}
        assert (await client.post("/v1/feedback", json=payload)).status_code == 401
        assert (
            await client.post("/v1/feedback", json=payload, headers={"Authorization": "Bearer api-one"})
        ).status_code == 201
        assert (await client.post("/v1/feedback", json=payload, headers=ADMIN)).status_code == 201
        assert (await client.get("/v1/feedback", headers={"Authorization": "Bearer nope"})).status_code == 401


# -- training jobs and the gate ------------------------------------------------------------


async def test_training_job_learns_from_corrections(
    admin_client: AsyncTestClient[Litestar], admin_settings: Settings
) -> None:
    before = (await admin_client.get("/v1/models")).json()["active"]
    await admin_client.post(
        "/v1/feedback", json={"text": "Rotate the Vault unseal keys for the shared cluster", "team": "Platform"}
    )
    await admin_client.post("/v1/feedback", json={"decision_id": (await classify(admin_client))[0], "team": "SRE"})
    response = await admin_client.post("/v1/models", json={"note": "with corrections"}, headers=ADMIN)
    assert response.status_code == 202
    assert response.headers["location"] == f"/v1/jobs/{response.json()['id']}"
    job = await wait_for_job(admin_client, response.json()["id"])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["corrections_used"] == 1, "the correction without text cannot train"
    assert result["activated"] is True and result["gate"]["passed"] is True
    assert result["version"] != before
    models = (await admin_client.get("/v1/models")).json()
    assert models["active"] == result["version"]
    assert models["activations"][0]["version"] == result["version"]
    assert models["activations"][0]["previous"] == before
    await asyncio.sleep(0.5)  # the watcher follows ACTIVE
    assert (await classify(admin_client))[1]["model_version"] == result["version"]


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("post", "/v1/models", NO_AUTH, 401),
        ("post", "/v1/models", {"Authorization": "Bearer wrong"}, 401),
        ("post", "/v1/models/rollback", NO_AUTH, 401),
        ("get", "/v1/jobs/nope", ADMIN, 404),
        ("post", "/v1/models/20991231T000000Z-abcdef/activate", ADMIN, 404),
        ("post", "/v1/models/rollback", ADMIN, 409),
        ("get", "/v1/models/20991231T000000Z-abcdef/shadow", ADMIN, 404),
        ("delete", "/v1/models/20991231T000000Z-abcdef/shadow", ADMIN, 404),
    ],
)
async def test_lifecycle_errors(
    admin_client: AsyncTestClient[Litestar], method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response = await getattr(admin_client, method)(path, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_admin_endpoints_are_off_without_an_admin_token(client: AsyncTestClient[Litestar]) -> None:
    response = await client.post("/v1/models", headers={"Authorization": "Bearer anything"})
    assert response.status_code == 403
    assert "TICKET_ROUTER_ADMIN_TOKEN" in response.json()["detail"]


async def test_a_second_training_while_one_runs_is_refused(
    admin_client: AsyncTestClient[Litestar], admin_settings: Settings
) -> None:
    store = open_store(admin_settings)
    try:
        store.jobs.create("train", {}, "someone-else")
    finally:
        store.close()
    response = await admin_client.post("/v1/models", headers=ADMIN)
    assert response.status_code == 409


async def test_stale_jobs_are_failed_at_start(admin_settings: Settings) -> None:
    store = open_store(admin_settings)
    try:
        job = store.jobs.create("train", {}, "crashed")
        store.jobs.update(job.id, status="running", heartbeat_at=time.time() - 3600)
    finally:
        store.close()
    async with AsyncTestClient(app=create_app(admin_settings)) as client:
        stale = (await client.get(f"/v1/jobs/{job.id}", headers=ADMIN)).json()
        assert stale["status"] == "failed" and "interrupted" in stale["error"]
        assert (await client.post("/v1/models", json={"activate": False}, headers=ADMIN)).status_code == 202


async def test_gate_refuses_a_worse_candidate_force_and_rollback(
    admin_client: AsyncTestClient[Litestar], admin_settings: Settings
) -> None:
    first = Registry(admin_settings.registry_dir).active_version()
    outcome = await asyncio.to_thread(train_version, admin_settings, params=WORSE, note="deliberately worse")
    assert outcome.activated is False
    assert not outcome.gate.passed and "worse than the active model" in outcome.gate.reason
    assert outcome.gate.candidate_macro_f1 < outcome.gate.active_macro_f1
    refused = await admin_client.post(f"/v1/models/{outcome.version}/activate", headers=ADMIN)
    assert refused.status_code == 409 and "force" in refused.json()["detail"]
    assert (await admin_client.get("/v1/models")).json()["active"] == first
    forced = await admin_client.post(
        f"/v1/models/{outcome.version}/activate", json={"force": True, "actor": "ana"}, headers=ADMIN
    )
    assert forced.status_code == 200
    event = forced.json()
    assert (event["version"], event["previous"], event["actor"], event["reason"]) == (
        outcome.version,
        first,
        "ana",
        "forced",
    )
    assert event["macro_f1"] == pytest.approx(outcome.macro_f1)
    assert (await classify(admin_client))[1]["model_version"] == outcome.version, "no restart needed"
    back = await admin_client.post("/v1/models/rollback", headers=ADMIN)
    assert back.status_code == 200 and back.json()["version"] == first
    assert (await classify(admin_client))[1]["model_version"] == first


async def test_hot_swap_under_concurrent_requests(
    admin_client: AsyncTestClient[Litestar], admin_settings: Settings
) -> None:
    first = Registry(admin_settings.registry_dir).active_version()
    second = (await asyncio.to_thread(train_version, admin_settings, activate=False)).version

    async def hammer() -> list[tuple[int, str]]:
        results = []
        for i in range(60):
            response = await admin_client.post("/v1/classify", json={"title": f"ticket {i}: disk full on db"})
            results.append((response.status_code, response.json().get("model_version")))
        return results

    workers = [asyncio.create_task(hammer()) for _ in range(4)]
    await asyncio.sleep(0.05)
    switched = await admin_client.post(f"/v1/models/{second}/activate", json={"force": True}, headers=ADMIN)
    assert switched.status_code == 200
    results = [item for task in workers for item in await task]
    assert {status for status, _ in results} == {200}
    assert {version for _, version in results} <= {first, second}
    assert (await classify(admin_client))[1]["model_version"] == second


# -- shadow mode ----------------------------------------------------------------------------


async def test_shadow_mode_records_both_and_reports(
    admin_client: AsyncTestClient[Litestar], admin_settings: Settings
) -> None:
    candidate = (await asyncio.to_thread(train_version, admin_settings, params=WORSE, activate=False)).version
    started = await admin_client.post(f"/v1/models/{candidate}/shadow", headers=ADMIN)
    assert started.status_code == 200 and started.json()["running"] is True
    assert (await admin_client.get("/v1/models")).json()["shadow"] == candidate
    tickets = [
        {"title": "Upgrade the EKS clusters to Kubernetes 1.30"},
        {"title": "CI pipeline fails on npm ci"},
        {"title": "Checkout total ignores the discount code"},
        {"title": "Pods OOMKilled in production"},
    ]
    ids = []
    for ticket in tickets:
        decision_id, decision = await classify(admin_client, ticket)
        assert decision["model_version"] != candidate, "the shadow never answers"
        ids.append((decision_id, decision["team"]))
    await admin_client.post("/v1/feedback", json={"decision_id": ids[0][0], "team": ids[0][1]})
    await admin_client.post("/v1/feedback", json={"decision_id": ids[1][0], "team": "Development"})
    report = (await admin_client.get(f"/v1/models/{candidate}/shadow", headers=ADMIN)).json()
    assert report["decisions"] == 4
    assert 0.0 <= report["agreement"] <= 1.0
    assert report["corrected"] == 2
    assert report["active_right"] == 1
    store = open_store(admin_settings)
    try:
        comparisons = store.audit.shadow_comparisons(candidate)
    finally:
        store.close()
    expected_shadow_right = sum(
        1 for c in comparisons if c.corrected_team is not None and c.corrected_team == c.shadow_team
    )
    assert report["shadow_right"] == expected_shadow_right
    assert (await admin_client.delete(f"/v1/models/{candidate}/shadow", headers=ADMIN)).status_code == 204
    await classify(admin_client)
    after = (await admin_client.get(f"/v1/models/{candidate}/shadow", headers=ADMIN)).json()
    assert after["running"] is False and after["decisions"] == 4


# -- taxonomy changes -----------------------------------------------------------------------


async def test_taxonomy_changes_are_detected_and_dropped_teams_never_predicted(admin_settings: Settings) -> None:
    teams_file = admin_settings.training_data / "teams.toml"
    text = teams_file.read_text()
    platform_start = text.index('[[teams]]\nid = "Platform"')
    text = text[:platform_start]  # Platform removed
    text = text.replace('name = "Development"', 'name = "Product Engineering"')
    text += """
[[teams]]
id = "Security"
name = "Security"
description = "Owns vulnerability management, CVE triage, secrets leaks, penetration tests and security reviews."
responsibilities = ["Triage CVEs and vulnerability scanner findings.", "Respond to leaked secrets and credentials."]
"""
    teams_file.write_text(text)
    # Examples of a removed team are an error naming file and line; the user removes them.
    examples = admin_settings.training_data / "examples" / "mini_examples.jsonl"
    examples.write_text("".join(line for line in examples.open() if '"Platform"' not in line))
    store = open_store(admin_settings)
    try:
        from service.store import CorrectionRecord, new_id

        store.corrections.add(
            CorrectionRecord(new_id(), time.time(), "api", "Platform", "Upgrade node pools", "", "x" * 64)
        )
        store.corrections.add(CorrectionRecord(new_id(), time.time(), "api", "SRE", "Alert: p99 latency", "", "y" * 64))
    finally:
        store.close()
    outcome = await asyncio.to_thread(train_version, admin_settings, force=True)
    change = outcome.taxonomy_change
    assert change is not None
    assert (change.added, change.removed, change.renamed) == (
        ["Security"],
        ["Platform"],
        {"Development": "Product Engineering"},
    )
    assert outcome.cold_start_teams == ["Security"]
    assert (outcome.corrections_used, outcome.corrections_dropped) == (1, 1)
    loaded = Registry(admin_settings.registry_dir).load(outcome.version).classifier()
    for title in ["Upgrade the EKS clusters to Kubernetes 1.30", "CVE-2024-3094 found by the scanner in xz"]:
        decision = loaded.decide(title)
        assert set(decision.scores) == {"Development", "DevOps", "SRE", "Security"}
        assert decision.team != "Platform"
