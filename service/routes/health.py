"""Liveness and readiness probes."""

from __future__ import annotations

import anyio
from litestar import Response, get

from service.errors import UnavailableError
from service.metrics import exposition
from service.openapi import problems
from service.runtime import Runtime
from service.schemas import Health
from service.store import StoreError

__all__ = ["healthz", "metrics", "readyz"]


@get("/healthz", summary="Liveness", tags=["operations"])
async def healthz() -> Health:
    """The process is up and answering."""
    return Health(status="ok")


@get("/readyz", summary="Readiness", tags=["operations"], responses=problems(503))
async def readyz(runtime: Runtime) -> Health:
    """Ready when a model is loaded and the database answers; 503 otherwise."""
    version = runtime.holder.version
    if version is None:
        raise UnavailableError(runtime.holder.last_error or "no model is loaded")
    try:
        await anyio.to_thread.run_sync(runtime.store.ping)
    except StoreError as exc:
        raise UnavailableError(str(exc)) from None
    return Health(status="ready", model_version=version)


@get("/metrics", include_in_schema=False)
async def metrics() -> Response[bytes]:
    """Prometheus metrics (every live worker's, with several worker processes)."""
    content, media_type = await anyio.to_thread.run_sync(exposition)
    return Response(content, media_type=media_type)
