"""Production quality of the active model: ``GET /v1/quality``."""

from __future__ import annotations

import anyio
from litestar import get

from service.auth import api_guard
from service.openapi import problems
from service.quality import QualityReport, quality_report
from service.runtime import Runtime
from service.serving import NoModelError

__all__ = ["get_quality"]


@get(
    "/v1/quality",
    summary="Production quality",
    description="Precision per team and overall of routed decisions against the team people gave the ticket"
    " (relabels, corrections, closings) over the quality window, beside the validated precision; routed,"
    " abstain, rule and skip shares; corrections since the active model was trained; whether to retrain.",
    tags=["models"],
    guards=[api_guard],
    responses=problems(401, 503),
)
async def get_quality(runtime: Runtime) -> QualityReport:
    """How the active model does in production, and whether retraining is recommended."""
    manifest = runtime.holder.manifest
    if manifest is None:
        raise NoModelError(runtime.holder.last_error or "no model is loaded")
    return await anyio.to_thread.run_sync(quality_report, runtime.settings, runtime.store, manifest)
