"""The taxonomy the service routes with, and the list view of a stored version."""

from __future__ import annotations

from litestar import get

from model.registry import Manifest
from service.auth import api_guard
from service.openapi import ANY_TOKEN, problems
from service.runtime import Runtime
from service.schemas import ModelSummary, TeamOut, TeamsResponse
from service.trackers import registry as trackers

__all__ = ["list_teams", "summary"]


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


@get(
    "/v1/teams",
    summary="The taxonomy in use",
    tags=["catalog"],
    guards=[api_guard],
    security=ANY_TOKEN,
    responses=problems(401, 503),
)
async def list_teams(runtime: Runtime) -> TeamsResponse:
    """The teams the active model routes to, with their tracker labels."""
    taxonomy = runtime.holder.taxonomy  # NoModelError (503) when nothing is loaded
    version = runtime.holder.version
    assert version is not None
    return TeamsResponse(
        model_version=version,
        teams=[
            TeamOut(
                id=t.id,
                name=t.name,
                description=t.description,
                responsibilities=t.responsibilities,
                terms=t.terms,
                labels={tracker: t.label_for(tracker) for tracker in trackers.names()},
            )
            for t in taxonomy.teams
        ],
    )
