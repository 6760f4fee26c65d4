"""The application factory: the one place where routes, start-up, dependencies and errors are wired."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from litestar import Litestar, Request
from litestar.di import Provide
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from service.decisions import DecisionWorker
from service.errors import exception_handlers
from service.jobs import TrainingJobs
from service.logs import AccessLogMiddleware
from service.openapi import docs_assets, swagger_ui
from service.pointers import registry_for
from service.routes.audit import get_decision
from service.routes.catalog import list_teams
from service.routes.classify import classify, classify_batch
from service.routes.feedback import create_feedback, list_feedback
from service.routes.health import healthz, readyz
from service.routes.models import ModelsController
from service.routes.webhooks import OutboxController, provide_intake, provide_writebacks, webhook_handler
from service.runtime import Runtime, provide_runtime
from service.serving import ModelHolder
from service.settings import Settings
from service.store import Store
from service.trackers import registry as trackers
from service.webhooks.intake import Intake
from service.webhooks.outbound import RetryPolicy, Sender
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
        store = await anyio.to_thread.run_sync(Store.for_settings, settings)
        registry = registry_for(settings, store)
        holder = ModelHolder(registry, settings.max_text_chars, settings.abstain_threshold)
        await anyio.to_thread.run_sync(holder.refresh)
        decisions = DecisionWorker(holder, store)
        decisions.start()
        jobs = TrainingJobs(settings, store)
        await anyio.to_thread.run_sync(jobs.recover)
        app.state.runtime = Runtime(
            settings=settings, registry=registry, store=store, holder=holder, decisions=decisions, jobs=jobs
        )
        watcher = asyncio.create_task(_watch_active_model(holder, settings.model_poll_seconds))
        # Write-backs: one HTTP client for every tracker, a worker that resumes stored rows at once.
        outbound = httpx.AsyncClient(timeout=httpx.Timeout(settings.writeback_timeout_seconds), follow_redirects=False)
        policy = RetryPolicy(
            settings.writeback_attempts, settings.writeback_backoff_seconds, settings.writeback_max_wait_seconds
        )
        known = trackers.build(settings.trackers)
        worker = WriteBackWorker(settings, known, store, Sender(outbound, policy))
        intake = Intake(settings, known, store, holder, decisions, worker.wake)
        for line in intake.startup_lines():
            log.info(line)
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
            jobs.close()
            await anyio.to_thread.run_sync(decisions.stop)
            store.close()

    middleware = [PrometheusConfig(app_name="ticket-router", prefix="ticket_router", group_path=True).middleware]
    rule = settings.rate_limit_rule
    if rule is not None:
        limit = RateLimitConfig(
            rate_limit=rule, identifier_for_request=_client_key, exclude=["/healthz", "/readyz", "/metrics"]
        )
        middleware.insert(0, limit.middleware)
    app = Litestar(
        route_handlers=[
            classify,
            classify_batch,
            list_teams,
            ModelsController,
            create_feedback,
            list_feedback,
            get_decision,
            healthz,
            readyz,
            MetricsController,
            OutboxController,
            docs_assets(),
            *(webhook_handler(kind) for kind in trackers.TRACKER_TYPES),
        ],
        middleware=middleware,
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
            render_plugins=[swagger_ui()],
        ),
        debug=False,
        logging_config=None,  # logging is configured by whoever runs the app (`serve`: JSON lines)
    )
    # Around the whole router, so that unmatched paths get a request id and an access line too.
    app.asgi_handler = AccessLogMiddleware(app.asgi_handler)
    return app


class MetricsController(PrometheusController):
    """Prometheus metrics at /metrics (every worker's, with several processes)."""

    path = "/metrics"
    include_in_schema = False


def _client_key(request: Request[Any, Any, Any]) -> str:
    """Rate limits apply per token when one is sent, else per client address (never storing the token)."""
    token = request.headers.get("authorization")
    if token:
        return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "address:" + (request.client.host if request.client else "unknown")


async def _watch_active_model(holder: ModelHolder, interval: float) -> None:
    """Follow the registry's ACTIVE pointer, so an activation anywhere reaches this process."""
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(holder.refresh)
        except Exception:  # keep watching; the holder keeps serving the previous version
            log.exception("model refresh failed")
