"""Model lifecycle: training jobs, activation through the promotion gate, rollback and shadow mode."""

from __future__ import annotations

from collections import Counter

import anyio
import msgspec
from litestar import Response, delete, get, post

from model.registry import Activation
from service.auth import admin_guard, json_body_guard
from service.errors import ConflictError, NotFoundError
from service.openapi import OptionalBodyOperation, problems
from service.runtime import Runtime
from service.schemas import ActivateRequest, JobOut, ShadowReport, TrainRequest
from service.store import JobConflictError, JobRecord
from service.trainer import GateRefusedError, promote

__all__ = ["activate_model", "get_job", "rollback_model", "shadow_report", "start_shadow", "stop_shadow", "train_model"]


ADMIN_PROBLEMS = problems(400, 401, 403, 404, 409, 415, 422, 503)


def _job_out(record: JobRecord) -> JobOut:
    return JobOut(**msgspec.structs.asdict(record))


@post(
    "/v1/models",
    status_code=202,
    summary="Train a new version",
    tags=["models"],
    guards=[admin_guard, json_body_guard],
    responses=ADMIN_PROBLEMS,
    operation_class=OptionalBodyOperation,
)
async def train_model(runtime: Runtime, data: TrainRequest | None = None) -> Response[JobOut]:
    """Queue a training from the training data and stored corrections; poll the job for its outcome."""
    options = msgspec.to_builtins(data or TrainRequest())
    try:
        record = await runtime.jobs.submit(options, actor="api")
    except JobConflictError as exc:
        raise ConflictError(str(exc)) from None
    return Response(_job_out(record), status_code=202, headers={"Location": f"/v1/jobs/{record.id}"})


@get("/v1/jobs/{job_id:str}", summary="A training job", tags=["models"], guards=[admin_guard], responses=ADMIN_PROBLEMS)
async def get_job(job_id: str, runtime: Runtime) -> JobOut:
    """Status of a job and, once finished, the new version, its metrics and the gate's verdict."""
    record = await anyio.to_thread.run_sync(runtime.store.get_job, job_id)
    if record is None:
        raise NotFoundError(f"no job {job_id!r}")
    return _job_out(record)


@post(
    "/v1/models/{version:str}/activate",
    status_code=200,
    summary="Activate a version",
    tags=["models"],
    guards=[admin_guard, json_body_guard],
    responses=ADMIN_PROBLEMS,
    operation_class=OptionalBodyOperation,
)
async def activate_model(version: str, runtime: Runtime, data: ActivateRequest | None = None) -> Activation:
    """Activate if the promotion gate lets it (``force`` overrides); every worker follows within seconds."""
    options = data or ActivateRequest()
    actor = options.actor or "api"
    try:
        event = await anyio.to_thread.run_sync(
            lambda: promote(runtime.settings, version, force=options.force, actor=actor)
        )
    except GateRefusedError as exc:
        raise ConflictError(str(exc)) from None
    await anyio.to_thread.run_sync(runtime.holder.refresh)
    return event


@post(
    "/v1/models/rollback",
    status_code=200,
    summary="Roll back",
    tags=["models"],
    guards=[admin_guard],
    responses=ADMIN_PROBLEMS,
)
async def rollback_model(runtime: Runtime) -> Activation:
    """Return to the version that was active before the current one."""
    event = await anyio.to_thread.run_sync(lambda: runtime.registry.rollback(actor="api"))
    await anyio.to_thread.run_sync(runtime.holder.refresh)
    return event


@post(
    "/v1/models/{version:str}/shadow",
    status_code=200,
    summary="Run in shadow",
    tags=["models"],
    guards=[admin_guard],
    responses=ADMIN_PROBLEMS,
)
async def start_shadow(version: str, runtime: Runtime) -> ShadowReport:
    """Decide every ticket with ``version`` too, beside the active model, and record both."""
    await anyio.to_thread.run_sync(runtime.registry.set_shadow, version)
    await anyio.to_thread.run_sync(runtime.holder.refresh)
    return await _report(runtime, version)


@delete(
    "/v1/models/{version:str}/shadow",
    status_code=204,
    summary="Stop shadow",
    tags=["models"],
    guards=[admin_guard],
    responses=ADMIN_PROBLEMS,
)
async def stop_shadow(version: str, runtime: Runtime) -> None:
    """Stop running ``version`` in shadow (its recorded decisions are kept)."""
    if runtime.registry.shadow_version() != version:
        raise NotFoundError(f"model {version!r} is not running in shadow")
    await anyio.to_thread.run_sync(runtime.registry.set_shadow, None)
    await anyio.to_thread.run_sync(runtime.holder.refresh)


@get(
    "/v1/models/{version:str}/shadow",
    summary="Shadow report",
    tags=["models"],
    guards=[admin_guard],
    responses=ADMIN_PROBLEMS,
)
async def shadow_report(version: str, runtime: Runtime) -> ShadowReport:
    """Agreement with the active model and, where people corrected a ticket, which one was right."""
    await anyio.to_thread.run_sync(runtime.registry.manifest, version)  # 404 for an unknown version
    return await _report(runtime, version)


async def _report(runtime: Runtime, version: str) -> ShadowReport:
    rows = await anyio.to_thread.run_sync(runtime.store.shadow_comparisons, version)
    counts = Counter(
        (
            row.active_team == row.shadow_team,
            row.corrected_team == row.active_team,
            row.corrected_team == row.shadow_team,
        )
        for row in rows
    )
    corrected = [row for row in rows if row.corrected_team is not None]
    return ShadowReport(
        version=version,
        running=runtime.registry.shadow_version() == version,
        decisions=len(rows),
        agreement=(sum(v for (agree, _, _), v in counts.items() if agree) / len(rows)) if rows else None,
        corrected=len(corrected),
        active_right=sum(1 for row in corrected if row.corrected_team == row.active_team),
        shadow_right=sum(1 for row in corrected if row.corrected_team == row.shadow_team),
    )
