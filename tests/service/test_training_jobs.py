"""Training jobs as a user follows them: progress, the list of jobs, refusals, and the README's learning loop."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from service.trainer import TrainingStep, train_version
from tests.service.test_learning import WORSE

pytestmark = pytest.mark.anyio

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
async def admin_client(settings: Settings) -> Any:
    async with AsyncTestClient(app=create_app(dataclasses.replace(settings, admin_token="admin-secret"))) as client:
        client.headers.update(ADMIN)
        yield client


async def finished(client: AsyncTestClient[Litestar], job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await client.get(f"/v1/jobs/{job_id}")).json()
        if job["status"] not in {"queued", "running"}:
            return job  # type: ignore[no-any-return]
        assert job["stage"] is None or isinstance(job["stage"], str)
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


async def test_a_refused_training_says_refused_with_the_reason(admin_client: AsyncTestClient[Litestar]) -> None:
    worse = {"note": "worse", "params": {"prior_weight": 0.0, "pipeline": {"min_df": 3}}}
    response = await admin_client.post("/v1/models", json=worse)
    assert response.status_code == 202
    job = await finished(admin_client, response.json()["id"])
    assert job["status"] == "refused", job
    assert "worse than the active model" in job["error"]
    assert job["result"]["activated"] is False and job["result"]["refused"] is True
    assert job["progress"] == 1.0 and job["stage"] == "refused by the promotion gate"
    listed = (await admin_client.get("/v1/jobs")).json()["jobs"]
    assert listed[0]["id"] == job["id"] and listed[0]["status"] == "refused"


async def test_jobs_are_listed_newest_first(admin_client: AsyncTestClient[Litestar]) -> None:
    ids = []
    for note in ("first", "second"):
        response = await admin_client.post("/v1/models", json={"note": note, "activate": False})
        ids.append(response.json()["id"])
        assert (await finished(admin_client, ids[-1]))["status"] == "succeeded"
    listed = (await admin_client.get("/v1/jobs", params={"limit": 2})).json()["jobs"]
    assert [job["id"] for job in listed] == ids[::-1]
    assert all(job["progress"] == 1.0 and job["stage"] == "done" for job in listed)
    assert (await admin_client.get("/v1/jobs", params={"limit": 0})).status_code == 422
    assert (await admin_client.get("/v1/jobs", headers={"Authorization": ""})).status_code == 401


def test_training_reports_its_steps(settings: Settings) -> None:
    steps: list[TrainingStep] = []
    outcome = train_version(settings, activate=False, progress=steps.append)
    stages = [step.stage for step in steps]
    assert stages[0].startswith("reading 48 examples and 4 teams")
    folds = outcome.gate.fold_differences
    assert stages.count("cross-validation") == len(folds) == stages.count("promotion gate")
    assert stages.count("final model") == 1
    fractions = [step.fraction for step in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert steps[1].describe() == f"cross-validation: fold 1 of {len(folds)} done"


def test_the_training_process_writes_its_stage_and_progress_to_the_job(settings: Settings) -> None:
    from service.jobs import run_training
    from service.store import Store

    with Store.for_settings(settings) as store:
        job = store.jobs.create("train", {"activate": False}, "ana")
    result = run_training(settings, {"activate": False}, "ana", job.id)  # what service/training_worker.py runs
    assert result.outcome is not None, result.error
    with Store.for_settings(settings) as store:
        seen = store.jobs.get(job.id)
    assert seen is not None and seen.progress == 1.0
    assert seen.stage is not None and seen.stage.startswith("promotion gate: fold")


def test_a_worse_recipe_is_refused_beyond_fold_noise(settings: Settings) -> None:
    outcome = train_version(settings, params=WORSE)
    gate = outcome.gate
    assert outcome.refused and not outcome.activated
    assert gate.mean_difference is not None and gate.tolerance is not None
    assert gate.mean_difference < -gate.tolerance
    assert len(gate.fold_differences) == 5
    same = train_version(settings, note="the same recipe again")
    assert same.activated and not same.refused
    assert same.gate.mean_difference == pytest.approx(0.0, abs=1e-9), "the same recipe on the same folds"


async def test_the_readme_learning_loop_ends_with_the_corrected_model_active(
    admin_client: AsyncTestClient[Litestar],
) -> None:
    # README, "Learning from corrections": classify, correct by decision id with the text, retrain, poll.
    ticket = {"title": "Slow queries on the reporting dashboard after the release"}
    first = await admin_client.post("/v1/classify", json=ticket)
    decision_id, before = first.headers["x-decision-id"], first.json()
    assert before["team"] != "Development"
    shown = (await admin_client.get(f"/v1/decisions/{decision_id}")).json()
    assert shown["team"] == before["team"] and shown["model_version"] == before["model_version"]
    feedback = {"decision_id": decision_id, "team": "Development", "actor": "ana", **ticket}
    assert (await admin_client.post("/v1/feedback", json=feedback)).status_code == 201
    response = await admin_client.post("/v1/models", json={"note": "weekly retrain"})
    assert response.status_code == 202
    job = await finished(admin_client, response.headers["location"].rsplit("/", 1)[1])
    assert job["status"] == "succeeded", job
    result = job["result"]
    assert result["activated"] is True and result["corrections_used"] == 1
    gate = result["gate"]
    assert (gate["corrections_checked"], gate["corrections_fixed"], gate["corrections_broken"]) == (1, 1, 0)
    models = (await admin_client.get("/v1/models")).json()
    assert models["active"] == result["version"]
    await asyncio.sleep(0.5)  # every worker follows ACTIVE within TICKET_ROUTER_MODEL_POLL_SECONDS
    after = (await admin_client.post("/v1/classify", json=ticket)).json()
    assert (after["team"], after["model_version"]) == ("Development", result["version"])


async def test_batch_results_carry_a_decision_id_that_takes_feedback(admin_client: AsyncTestClient[Litestar]) -> None:
    items = [{"id": "OPS-12", "title": "Upgrade the EKS clusters to 1.30"}, {"title": "Disk full on db-1"}]
    results = (await admin_client.post("/v1/classify/batch", json={"items": items})).json()["results"]
    assert results[0]["id"] == "OPS-12" and "id" not in results[1]
    ids = [r["decision_id"] for r in results]
    assert len(set(ids)) == 2
    stream = await admin_client.post(
        "/v1/classify/batch",
        content=b'{"id": "1", "title": "CI pipeline fails on npm ci"}\n',
        headers={"content-type": "application/x-ndjson"},
    )
    [line] = stream.text.splitlines()
    streamed = msgspec_json(line)
    assert streamed["id"] == "1" and len(streamed["decision_id"]) == 32
    for decision_id, result in zip(ids, results, strict=True):
        shown = (await admin_client.get(f"/v1/decisions/{decision_id}")).json()
        assert (shown["team"], shown["source"], shown["corrected_to"]) == (result["team"], "batch", [])
    fixed = await admin_client.post("/v1/feedback", json={"decision_id": ids[1], "team": "Platform"})
    assert fixed.status_code == 201 and fixed.json()["previous_team"] == results[1]["team"]
    assert (await admin_client.get(f"/v1/decisions/{ids[1]}")).json()["corrected_to"] == ["Platform"]


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/v1/decisions/" + "0" * 32, ADMIN, 404),
        ("/v1/decisions/nope", {"Authorization": ""}, 401),
        ("/v1/jobs", {"Authorization": "Bearer wrong"}, 401),
    ],
)
async def test_lookup_errors(
    admin_client: AsyncTestClient[Litestar], path: str, headers: dict[str, str], status: int
) -> None:
    response = await admin_client.get(path, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"


def msgspec_json(line: str) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(line)
    return data


def test_migration_8_adds_job_progress_to_an_older_database(database_url: str) -> None:
    import sqlalchemy as sa

    from service.store import Store

    with Store.open(database_url) as store, store.db.write() as conn:
        for column in ("stage", "progress"):
            conn.execute(sa.text(f"ALTER TABLE jobs DROP COLUMN {column}"))
        conn.execute(sa.text("DELETE FROM schema_migrations WHERE version = 8"))
    with Store.open(database_url) as store:
        assert store.schema_version() == 8
        job = store.jobs.create("train", {}, "ana")
        store.jobs.update(job.id, status="running", stage="cross-validation: fold 1 of 5 done", progress=0.1)
        assert store.jobs.recent(1)[0].progress == 0.1
