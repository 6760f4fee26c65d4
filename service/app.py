"""The application factory: the one place where routes, start-up, dependencies and errors are wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import anyio
import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin

from model.registry import Registry
from service.decisions import DecisionWorker
from service.errors import exception_handlers
from service.routes.catalog import get_model, list_models, list_teams
from service.routes.classify import classify, classify_batch
from service.routes.health import healthz, readyz
from service.runtime import Runtime, provide_runtime
from service.serving import ModelHolder
from service.settings import Settings
from service.store import Store, database_url_for
from service.webhooks.intake import Intake
from service.webhooks.outbound import RetryPolicy, Sender
from service.webhooks.routes import WEBHOOK_HANDLERS, provide_intake, provide_writebacks
from service.webhooks.writeback import WriteBackWorker

__all__ = ["create_app"]

log = logging.getLogger("ticket_router.app")

VERSION = "0.1.0"
GIL_SWITCH_INTERVAL = 0.0005


def create_app(settings: Settings) -> Litestar:
    """Build the service for ``settings``; nothing is read from the environment here."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # The decision worker shares the GIL with the event loop; a shorter switch interval
        # lets it take the GIL back promptly after SQLite releases it (measured: +5-10%).
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        url = database_url_for(settings.database_url, settings.sqlite_path)
        store = await anyio.to_thread.run_sync(Store.open, url)
        registry = Registry(settings.registry_dir)
        holder = ModelHolder(registry, settings.max_text_chars, settings.abstain_threshold)
        await anyio.to_thread.run_sync(holder.refresh)
        decisions = DecisionWorker(holder, store)
        decisions.start()
        app.state.runtime = Runtime(
            settings=settings, registry=registry, store=store, holder=holder, decisions=decisions
        )
        watcher = asyncio.create_task(_watch_active_model(holder, settings.model_poll_seconds))
        # Write-backs: one HTTP client for every tracker, a worker that resumes stored rows at once.
        outbound = httpx.AsyncClient(timeout=httpx.Timeout(settings.writeback_timeout_seconds), follow_redirects=False)
        policy = RetryPolicy(
            settings.writeback_attempts, settings.writeback_backoff_seconds, settings.writeback_max_wait_seconds
        )
        worker = WriteBackWorker(settings, store, Sender(outbound, policy))
        intake = Intake(settings, store, holder, decisions, worker.wake)
        for warning in intake.startup_warnings():
            log.warning(warning)
        app.state.webhook_intake = intake
        app.state.writeback_worker = worker
        worker.start()
        try:
            yield
        finally:
            await worker.stop()
            await outbound.aclose()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await anyio.to_thread.run_sync(decisions.stop)
            store.close()

    return Litestar(
        route_handlers=[
            classify,
            classify_batch,
            list_teams,
            list_models,
            get_model,
            healthz,
            readyz,
            *WEBHOOK_HANDLERS,
        ],
        dependencies={
            "runtime": Provide(provide_runtime, sync_to_thread=False),
            "webhook_intake": Provide(provide_intake, sync_to_thread=False),
            "writeback_worker": Provide(provide_writebacks, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        lifespan=[lifespan],
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Ticket Router",
            version=VERSION,
            description="Routes engineering tickets to the owning team, with a calibrated score for every team.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
        ),
        debug=False,
    )


async def _watch_active_model(holder: ModelHolder, interval: float) -> None:
    """Follow the registry's ACTIVE pointer, so an activation anywhere reaches this process."""
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(holder.refresh)
        except Exception:  # keep watching; the holder keeps serving the previous version
            log.exception("model refresh failed")
