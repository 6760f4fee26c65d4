"""Models: versions and their metrics, charts, thresholds, training jobs and the gate; activate, roll back, train.

Every change goes through a confirmation page (a GET that only shows what would happen) and
then a POST with a CSRF token; the changes are the same calls the admin API makes.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect
from msgspec import Meta

from model.errors import RegistryError
from model.registry import Manifest
from service.console.access import BASE, console_guard
from service.console.catalog import ModelCatalog
from service.console.render import page, runtime_of, team_names, user_of
from service.errors import ConflictError, NotFoundError
from service.runtime import Runtime
from service.schemas import ShadowReport
from service.shadow import shadow_report
from service.store import JobConflictError, JobRecord
from service.trainer import GateRefusedError, promote

__all__ = ["ModelsController"]

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Version = Annotated[str | None, Parameter(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z-]+$")]
NOTICES = {"activated", "rolled-back", "training"}


def _catalog(request: Request[Any, Any, Any]) -> ModelCatalog:
    catalog: ModelCatalog = request.app.state.console_catalog
    return catalog


class ActivateForm(msgspec.Struct):
    """Activation, with ``force`` to override the promotion gate."""

    force: bool = False


class TrainForm(msgspec.Struct):
    """A training's note."""

    note: Annotated[str, Meta(max_length=500)] = ""


class ModelsController(Controller):
    """The models page, its charts, and the confirmed changes."""

    path = BASE + "/models"
    guards = [console_guard]  # noqa: RUF012 - Litestar reads these as class attributes
    include_in_schema = False

    @get("/", name="console-models")
    async def models(
        self,
        request: Request[Any, Any, Any],
        version: Version = None,
        notice: Annotated[str | None, Parameter(max_length=20)] = None,
        job: Version = None,
    ) -> Response[Any]:
        """Every version with its headline metrics; the chosen one (the active by default) in detail."""
        runtime = runtime_of(request)
        overview = await anyio.to_thread.run_sync(_overview, runtime, _catalog(request), version, job)
        return page(request, "models.html", notice=notice if notice in NOTICES else None, **overview)

    @get("/{version:str}/confusion.png", name="console-model-confusion", media_type="image/png")
    async def confusion(self, request: Request[Any, Any, Any], version: str) -> Response[bytes]:
        """The confusion matrix of a version's cross-validation, drawn server-side."""
        return await _chart(request, version, "confusion")

    @get("/{version:str}/reliability.png", name="console-model-reliability", media_type="image/png")
    async def reliability(self, request: Request[Any, Any, Any], version: str) -> Response[bytes]:
        """The reliability diagram of a version's cross-validation, drawn server-side."""
        return await _chart(request, version, "reliability")

    @get("/{version:str}/activate", name="console-confirm-activate")
    async def confirm_activate(self, request: Request[Any, Any, Any], version: str) -> Response[Any]:
        """What activating ``version`` would do; changes nothing."""
        runtime = runtime_of(request)
        manifest = await anyio.to_thread.run_sync(_catalog(request).manifest, runtime.registry, version)
        active = runtime.registry.active_version()
        return page(request, "confirm.html", action="activate", manifest=manifest, active=active, target=version)

    @post("/{version:str}/activate", status_code=303)
    async def activate(
        self, request: Request[Any, Any, Any], version: str, data: Annotated[ActivateForm, Form]
    ) -> Response[Any]:
        """Activate through the promotion gate (or past it with force); every worker follows within seconds."""
        runtime = runtime_of(request)
        actor = user_of(request)
        try:
            await anyio.to_thread.run_sync(
                lambda: promote(runtime.settings, runtime.store, version, force=data.force, actor=actor)
            )
        except GateRefusedError as exc:
            raise ConflictError(str(exc)) from None
        await anyio.to_thread.run_sync(runtime.holder.refresh)
        return Redirect(f"{BASE}/models?version={version}&notice=activated", status_code=303)

    @get("/rollback", name="console-confirm-rollback")
    async def confirm_rollback(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Which version a rollback would return to; changes nothing."""
        runtime = runtime_of(request)
        target = await anyio.to_thread.run_sync(runtime.registry.rollback_target)
        manifest = await anyio.to_thread.run_sync(_catalog(request).manifest, runtime.registry, target)
        active = runtime.registry.active_version()
        return page(request, "confirm.html", action="rollback", manifest=manifest, active=active, target=target)

    @post("/rollback", status_code=303)
    async def rollback(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """Return to the version that was active before the current one."""
        runtime = runtime_of(request)
        actor = user_of(request)
        event = await anyio.to_thread.run_sync(lambda: runtime.registry.rollback(actor=actor))
        await anyio.to_thread.run_sync(runtime.holder.refresh)
        return Redirect(f"{BASE}/models?version={event.version}&notice=rolled-back", status_code=303)

    @get("/train", name="console-confirm-train")
    async def confirm_train(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """What a training would use; changes nothing."""
        runtime = runtime_of(request)
        active = runtime.registry.active_version()
        return page(request, "confirm.html", action="train", manifest=None, active=active, target=None)

    @post("/train", status_code=303)
    async def train(self, request: Request[Any, Any, Any], data: Annotated[TrainForm, Form]) -> Response[Any]:
        """Queue a training (activated if the gate passes), as ``POST /v1/models`` does."""
        runtime = runtime_of(request)
        options = {"note": data.note, "activate": True, "force": False, "params": None}
        try:
            record = await runtime.jobs.submit(options, actor=user_of(request))
        except JobConflictError as exc:
            raise ConflictError(str(exc)) from None
        return Redirect(f"{BASE}/models?notice=training&job={record.id}#jobs", status_code=303)


async def _chart(request: Request[Any, Any, Any], version: str, kind: str) -> Response[bytes]:
    runtime = runtime_of(request)
    catalog = _catalog(request)
    manifest = await anyio.to_thread.run_sync(catalog.manifest, runtime.registry, version)
    image = await anyio.to_thread.run_sync(catalog.chart, manifest, kind)
    if image is None:
        raise NotFoundError(f"model {version} has no cross-validation to draw")
    return Response(image, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


def _overview(runtime: Runtime, catalog: ModelCatalog, version: str | None, job_id: str | None) -> dict[str, Any]:
    registry = runtime.registry
    manifests = catalog.manifests(registry)
    active, shadow = registry.active_version(), registry.shadow_version()
    chosen = version or active or (manifests[0].version if manifests else None)
    selected: Manifest | None = None
    if chosen is not None:
        selected = catalog.manifest(registry, chosen)
    try:
        rollback_to: str | None = registry.rollback_target()
    except RegistryError:
        rollback_to = None
    report: ShadowReport | None = shadow_report(runtime.store, registry, shadow) if shadow else None
    jobs: list[JobRecord] = runtime.store.jobs.recent(10)
    job = runtime.store.jobs.get(job_id) if job_id else None
    names = team_names(runtime)
    if selected is not None:
        names = {**{team.id: team.name for team in selected.taxonomy.teams}, **names}
    return {
        "manifests": manifests,
        "active": active,
        "shadow": shadow,
        "selected": selected,
        "rollback_to": rollback_to,
        "shadow_report": report,
        "jobs": jobs,
        "job": job,
        "history": list(reversed(registry.history()[-10:])),
        "names": names,
    }
