"""Read-only views of what the service routes with: the taxonomy and the stored model versions."""

from __future__ import annotations

import anyio
import msgspec
from litestar import get

from model.registry import Manifest
from model.taxonomy import TRACKERS, Team
from service.auth import api_guard
from service.openapi import problems
from service.runtime import Runtime
from service.schemas import ModelDetail, ModelsResponse, ModelSummary, TeamOut, TeamsResponse

__all__ = ["get_model", "list_models", "list_teams"]


@get("/v1/teams", summary="The taxonomy in use", tags=["catalog"], guards=[api_guard], responses=problems(401, 503))
async def list_teams(runtime: Runtime) -> TeamsResponse:
    """The teams the active model routes to, with their tracker labels."""
    runtime.holder.classifier  # noqa: B018 - raises NoModelError (503) when nothing is loaded
    manifest = runtime.holder.manifest
    assert manifest is not None
    teams = msgspec.convert(manifest.taxonomy["teams"], list[Team])
    return TeamsResponse(
        model_version=manifest.version,
        teams=[
            TeamOut(
                id=t.id,
                name=t.name,
                description=t.description,
                responsibilities=t.responsibilities,
                terms=t.terms,
                labels={tracker: t.label_for(tracker) for tracker in TRACKERS},
            )
            for t in teams
        ],
    )


def summary(manifest: Manifest, active: str | None) -> ModelSummary:
    """The list view of one version."""
    cv = manifest.report.cv
    return ModelSummary(
        version=manifest.version,
        created_at=manifest.created_at,
        active=manifest.version == active,
        teams=manifest.teams,
        threshold=manifest.threshold,
        n_examples=manifest.report.n_examples,
        accuracy=cv.accuracy if cv else None,
        macro_f1=cv.macro_f1 if cv else None,
        ece=cv.ece if cv else None,
        note=manifest.note,
    )


@get("/v1/models", summary="Stored model versions", tags=["models"], guards=[api_guard], responses=problems(401))
async def list_models(runtime: Runtime) -> ModelsResponse:
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
    "/v1/models/{version:str}",
    summary="One model version",
    tags=["models"],
    guards=[api_guard],
    responses=problems(401, 404, 409),
)
async def get_model(version: str, runtime: Runtime) -> ModelDetail:
    """The full manifest of a version: data hash, libraries, parameters, metrics, threshold."""
    manifest = await anyio.to_thread.run_sync(runtime.registry.manifest, version)
    return ModelDetail(active=manifest.version == runtime.registry.active_version(), manifest=manifest)
