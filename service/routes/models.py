"""Model versions: listing and inspecting them, training jobs, activation through the gate, rollback, shadow."""

from __future__ import annotations

from typing import Annotated

import anyio
import msgspec
from litestar import Controller, Response, delete, get, post
from litestar.params import Parameter

from model.registry import Activation
from service.auth import access_guard, json_body_guard
from service.errors import ConflictError, NotFoundError
from service.openapi import ADMIN_TOKEN, ANY_TOKEN, OptionalBodyOperation, problems
from service.routes.catalog import summary
from service.runtime import Runtime
from service.schemas import (
    ActivateRequest,
    JobOut,
    JobsResponse,
    ModelDetail,
    ModelsResponse,
    ShadowReport,
    TrainRequest,
)
from service.shadow import shadow_report
from service.store import JobConflictError, JobRecord
from service.trainer import GateRefusedError, promote

__all__ = ["ModelsController"]


ADMIN_PROBLEMS = problems(400, 401, 403, 404, 409, 415, 422, 503)


def _job_out(record: JobRecord) -> JobOut:
    return JobOut(**msgspec.structs.asdict(record))


class ModelsController(Controller):
    """Everything about model versions; reading them takes an API token, changing them the admin token."""

    path = "/v1"
    tags = ["models"]  # noqa: RUF012 - Litestar reads these as class attributes
    guards = [access_guard]  # noqa: RUF012 - each handler's opt["access"] says which token; admin by default

    @get("/models", summary="Stored model versions", opt={"access": "api"}, security=ANY_TOKEN, responses=problems(401))
    async def list_models(self, runtime: Runtime) -> ModelsResponse:
        """Every stored version with its headline metrics, newest first."""
        registry = runtime.registry
        manifests, active, shadow, history = await anyio.to_thread.run_sync(
            lambda: (registry.list(), registry.active_version(), registry.shadow_version(), registry.history())
        )
        return ModelsResponse(
            active=active,
            shadow=shadow,
            models=[summary(m, active) for m in manifests],
            activations=list(reversed(history[-20:])),
        )

    @get(
        "/models/{version:str}",
        summary="One model version",
        opt={"access": "api"},
        security=ANY_TOKEN,
        responses=problems(401, 404, 409),
    )
    async def get_model(self, version: str, runtime: Runtime) -> ModelDetail:
        """The full manifest of a version: data hash, libraries, parameters, metrics, threshold."""
        manifest = await anyio.to_thread.run_sync(runtime.registry.manifest, version)
        return ModelDetail(active=manifest.version == runtime.registry.active_version(), manifest=manifest)

    @post(
        "/models",
        status_code=202,
        summary="Train a new version",
        guards=[json_body_guard],
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
        operation_class=OptionalBodyOperation,
    )
    async def train_model(self, runtime: Runtime, data: TrainRequest | None = None) -> Response[JobOut]:
        """Queue a training from the training data and stored corrections; poll the job for its outcome."""
        options = msgspec.to_builtins(data or TrainRequest())
        try:
            record = await runtime.jobs.submit(options, actor="api")
        except JobConflictError as exc:
            raise ConflictError(str(exc)) from None
        return Response(_job_out(record), status_code=202, headers={"Location": f"/v1/jobs/{record.id}"})

    @get("/jobs", summary="Training jobs", security=ADMIN_TOKEN, responses=ADMIN_PROBLEMS)
    async def list_jobs(self, runtime: Runtime, limit: Annotated[int, Parameter(ge=1, le=500)] = 50) -> JobsResponse:
        """Training jobs, newest first, with their status, stage and progress (admin token)."""
        records = await anyio.to_thread.run_sync(runtime.store.jobs.recent, limit)
        return JobsResponse(jobs=[_job_out(r) for r in records])

    @get("/jobs/{job_id:str}", summary="A training job", security=ADMIN_TOKEN, responses=ADMIN_PROBLEMS)
    async def get_job(self, job_id: str, runtime: Runtime) -> JobOut:
        """Status, stage and progress of a job and, once finished, the new version, its metrics and the gate's
        verdict (``refused`` when the gate refused to activate it, with the reason in ``error``)."""
        record = await anyio.to_thread.run_sync(runtime.store.jobs.get, job_id)
        if record is None:
            raise NotFoundError(f"no job {job_id!r}")
        return _job_out(record)

    @post(
        "/models/{version:str}/activate",
        status_code=200,
        summary="Activate a version",
        guards=[json_body_guard],
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
        operation_class=OptionalBodyOperation,
    )
    async def activate_model(self, version: str, runtime: Runtime, data: ActivateRequest | None = None) -> Activation:
        """Activate if the promotion gate lets it (``force`` overrides); every worker follows within seconds."""
        options = data or ActivateRequest()
        actor = options.actor or "api"
        try:
            event = await anyio.to_thread.run_sync(
                lambda: promote(runtime.settings, runtime.store, version, force=options.force, actor=actor)
            )
        except GateRefusedError as exc:
            raise ConflictError(str(exc)) from None
        await anyio.to_thread.run_sync(runtime.holder.refresh)
        return event

    @post(
        "/models/rollback",
        status_code=200,
        summary="Roll back",
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
    )
    async def rollback_model(self, runtime: Runtime) -> Activation:
        """Return to the version that was active before the current one."""
        event = await anyio.to_thread.run_sync(lambda: runtime.registry.rollback(actor="api"))
        await anyio.to_thread.run_sync(runtime.holder.refresh)
        return event

    @post(
        "/models/{version:str}/shadow",
        status_code=200,
        summary="Run in shadow",
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
    )
    async def start_shadow(self, version: str, runtime: Runtime) -> ShadowReport:
        """Decide every ticket with ``version`` too, beside the active model, and record both."""
        await anyio.to_thread.run_sync(runtime.registry.set_shadow, version)
        await anyio.to_thread.run_sync(runtime.holder.refresh)
        return await _report(runtime, version)

    @delete(
        "/models/{version:str}/shadow",
        status_code=204,
        summary="Stop shadow",
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
    )
    async def stop_shadow(self, version: str, runtime: Runtime) -> None:
        """Stop running ``version`` in shadow (its recorded decisions are kept)."""
        if runtime.registry.shadow_version() != version:
            raise NotFoundError(f"model {version!r} is not running in shadow")
        await anyio.to_thread.run_sync(runtime.registry.set_shadow, None)
        await anyio.to_thread.run_sync(runtime.holder.refresh)

    @get(
        "/models/{version:str}/shadow",
        summary="Shadow report",
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
    )
    async def shadow_report(self, version: str, runtime: Runtime) -> ShadowReport:
        """Agreement with the active model and, where people corrected a ticket, which one was right."""
        await anyio.to_thread.run_sync(runtime.registry.manifest, version)  # 404 for an unknown version
        return await _report(runtime, version)


async def _report(runtime: Runtime, version: str) -> ShadowReport:
    return await anyio.to_thread.run_sync(shadow_report, runtime.store, runtime.registry, version)
