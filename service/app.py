"""The application factory: the one place where routes, start-up, dependencies and errors are wired."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator

import anyio
import httpx
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig
from litestar.types import Middleware

from service import triage
from service.auth import TokenBook
from service.console import console
from service.decisions import DecisionWorker
from service.errors import exception_handlers
from service.forwarded import ForwardedMiddleware, TrustedProxies
from service.jobs import TrainingJobs
from service.limits import ConcurrencyLimit
from service.logs import AccessLogMiddleware
from service.metrics import forget_dead_workers
from service.openapi import components, docs_assets, swagger_ui
from service.pointers import registry_for
from service.quality import quality_report
from service.ratelimit import Budget, RateLimit
from service.routes.audit import get_decision
from service.routes.catalog import list_teams
from service.routes.classify import classify, classify_batch
from service.routes.feedback import create_feedback, list_feedback
from service.routes.health import healthz, metrics, readyz
from service.routes.models import ModelsController
from service.routes.quality import get_quality
from service.routes.webhooks import OutboxController, provide_intake, provide_writebacks, webhook_handler
from service.routing import rules_for
from service.runtime import Runtime, provide_runtime
from service.server import METRICS_DIR_VARIABLE
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
        metrics_dir = os.environ.get(METRICS_DIR_VARIABLE)
        if metrics_dir:  # a worker replacing one that was killed: the dead one's gauges go now
            forget_dead_workers(metrics_dir)
        store = await anyio.to_thread.run_sync(Store.for_settings, settings)
        registry = registry_for(settings, store)
        holder = ModelHolder(registry, settings.max_text_chars, settings.abstain_threshold)
        await anyio.to_thread.run_sync(holder.refresh)
        # Rules are checked against the served model's teams (else teams.toml): a bad file stops start-up.
        teams = holder.manifest.teams if holder.manifest is not None else None
        rules = await anyio.to_thread.run_sync(lambda: rules_for(settings, teams))
        decisions = DecisionWorker(holder, store, triage_margin=settings.triage_margin, rules=rules)
        decisions.start()
        jobs = TrainingJobs(settings, store)
        await anyio.to_thread.run_sync(jobs.recover)
        app.state.runtime = Runtime(
            settings=settings, registry=registry, store=store, holder=holder, decisions=decisions, jobs=jobs
        )
        watcher = asyncio.create_task(_watch_active_model(holder, settings.model_poll_seconds))
        pruner = asyncio.create_task(triage.prune_forever(store, settings.triage_retention_days))
        gauges = asyncio.create_task(_refresh_quality(settings, store, holder))
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
            for task in (watcher, pruner, gauges):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await jobs.close()
            await anyio.to_thread.run_sync(decisions.stop)
            store.close()
            _stop_idle_worker_threads()

    panel = console(settings)
    app = Litestar(
        route_handlers=[
            classify,
            classify_batch,
            list_teams,
            ModelsController,
            get_quality,
            create_feedback,
            list_feedback,
            get_decision,
            healthz,
            readyz,
            metrics,
            OutboxController,
            docs_assets(),
            *(webhook_handler(kind) for kind in trackers.TRACKER_TYPES),
            *panel.routes,
        ],
        template_config=panel.templates,
        middleware=_middleware(settings),
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
            components=components(),
        ),
        debug=False,
        logging_config=None,  # logging is configured by whoever runs the app (`serve`: JSON lines)
    )
    panel.attach(app.state)
    # Around the whole router, so that unmatched paths get a request id and an access line too; the
    # client address comes from a trusted proxy's X-Forwarded-For before anything reads it.
    app.asgi_handler = ForwardedMiddleware(
        AccessLogMiddleware(app.asgi_handler), TrustedProxies(settings.forwarded_allow_ips)
    )
    return app


def _middleware(settings: Settings) -> list[Middleware]:
    """Metrics outermost (they count refusals too), then the rate limits, then the limit of work in progress."""
    middleware: list[Middleware] = [
        PrometheusConfig(app_name="ticket-router", prefix="ticket_router", group_path=True).middleware
    ]
    requests, failures = settings.rate_limit_rule, settings.auth_failure_rule
    if requests is not None or failures is not None:
        keys = settings.rate_limit_clients
        middleware.append(
            RateLimit(
                TokenBook(settings.api_tokens, settings.admin_token),
                Budget(*requests, keys) if requests else None,
                Budget(*failures, keys) if failures else None,
            )
        )
    middleware.append(ConcurrencyLimit(settings.max_concurrency))
    return middleware


def _stop_idle_worker_threads() -> None:
    """Stop AnyIO's idle worker threads: they are not daemons, and the process could not exit.

    AnyIO stops them when the task it takes for the event loop's root ends; under granian that
    task can outlive the app, and the worker process then hangs at exit instead of stopping.
    """
    for thread in threading.enumerate():
        stop = getattr(thread, "stop", None)
        if thread.name == "AnyIO worker thread" and callable(stop):
            with contextlib.suppress(Exception):
                stop()


QUALITY_REFRESH_SECONDS = 60.0


async def _refresh_quality(settings: Settings, store: Store, holder: ModelHolder) -> None:
    """Keep the production-quality gauges of /metrics current (GET /v1/quality refreshes them too)."""
    while True:
        manifest = holder.manifest
        if manifest is not None:
            try:
                await anyio.to_thread.run_sync(quality_report, settings, store, manifest)
            except Exception:  # the gauges keep their last values; the next round tries again
                log.exception("production quality refresh failed")
        await asyncio.sleep(QUALITY_REFRESH_SECONDS)


async def _watch_active_model(holder: ModelHolder, interval: float) -> None:
    """Follow the registry's ACTIVE pointer, so an activation anywhere reaches this process."""
    while True:
        await asyncio.sleep(interval)
        try:
            await anyio.to_thread.run_sync(holder.refresh)
        except Exception:  # keep watching; the holder keeps serving the previous version
            log.exception("model refresh failed")
