"""Webhook endpoints for GitHub, GitLab and Jira, and the admin view of deliveries and write-backs.

Each webhook handler reads the raw body (signatures are over the exact bytes), hands it to
the intake and answers; the write-back worker is woken only after the answer has been sent.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
import msgspec
from litestar import Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.params import Parameter

from service.auth import admin_guard, json_body_guard
from service.metrics import WEBHOOK_EVENTS
from service.openapi import OptionalBodyOperation, problems
from service.runtime import Runtime
from service.store import DeliveryRecord, WritebackRecord
from service.webhooks.events import Tracker
from service.webhooks.intake import Intake
from service.webhooks.schemas import (
    DeliveriesResponse,
    DeliveryOut,
    RetryRequest,
    RetryResponse,
    WebhookResult,
    WritebackOut,
    WritebacksResponse,
)
from service.webhooks.writeback import WriteBackWorker

__all__ = [
    "WEBHOOK_HANDLERS",
    "github_webhook",
    "gitlab_webhook",
    "jira_webhook",
    "list_deliveries",
    "list_writebacks",
    "provide_intake",
    "provide_writebacks",
    "retry_writebacks",
]

_DESCRIPTION = (
    "Authenticated on the raw body ({auth}); 401 when missing or wrong, 404 when the tracker has no secret"
    " configured. Every authentic delivery gets 200 with what was done: `classified` (the write-back runs"
    " after this answer), `ignored` with the reason, `correction`, or `duplicate` for a redelivery."
)


# Signature failures (401), a tracker that is not configured (404), unreadable or invalid
# bodies (400/422), bodies over the limit (413), no model or database (503).
WEBHOOK_PROBLEMS = problems(400, 401, 404, 413, 422, 503)


def provide_intake(state: State) -> Intake:
    """Dependency: the webhook intake."""
    intake: Intake = state.webhook_intake
    return intake


def provide_writebacks(state: State) -> WriteBackWorker:
    """Dependency: the write-back worker."""
    worker: WriteBackWorker = state.writeback_worker
    return worker


async def _receive(tracker: Tracker, request: Request[Any, Any, Any], intake: Intake) -> Response[WebhookResult]:
    body = await request.body()
    try:
        result = await intake.receive(tracker, request.headers, body)
    except Exception:
        WEBHOOK_EVENTS.labels(tracker, "rejected").inc()
        raise
    WEBHOOK_EVENTS.labels(tracker, result.outcome).inc()
    wake = BackgroundTask(intake.wake_writer) if result.write_back == "pending" else None
    return Response(result, status_code=200, background=wake)


@post(
    "/v1/webhooks/github",
    responses=WEBHOOK_PROBLEMS,
    summary="GitHub webhook (issues, ping)",
    description=_DESCRIPTION.format(auth="`X-Hub-Signature-256`"),
    tags=["webhooks"],
    status_code=200,
)
async def github_webhook(request: Request[Any, Any, Any], webhook_intake: Intake) -> Response[WebhookResult]:
    """Receive a GitHub delivery."""
    return await _receive("github", request, webhook_intake)


@post(
    "/v1/webhooks/gitlab",
    responses=WEBHOOK_PROBLEMS,
    summary="GitLab webhook (issue and work item events)",
    description=_DESCRIPTION.format(auth="`X-Gitlab-Token` and/or the signing token's `webhook-signature`"),
    tags=["webhooks"],
    status_code=200,
)
async def gitlab_webhook(request: Request[Any, Any, Any], webhook_intake: Intake) -> Response[WebhookResult]:
    """Receive a GitLab delivery."""
    return await _receive("gitlab", request, webhook_intake)


@post(
    "/v1/webhooks/jira",
    responses=WEBHOOK_PROBLEMS,
    summary="Jira Cloud webhook (issue created and updated)",
    description=_DESCRIPTION.format(auth="`X-Hub-Signature`"),
    tags=["webhooks"],
    status_code=200,
)
async def jira_webhook(request: Request[Any, Any, Any], webhook_intake: Intake) -> Response[WebhookResult]:
    """Receive a Jira delivery."""
    return await _receive("jira", request, webhook_intake)


Limit = Annotated[int, Parameter(ge=1, le=1000)]
_requests_decoder = msgspec.json.Decoder(list[dict[str, object]])


def _writeback_out(row: WritebackRecord) -> WritebackOut:
    return WritebackOut(
        id=row.id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        tracker=row.tracker,
        ticket_ref=row.ticket_ref,
        status=row.status,
        attempts=row.attempts,
        decision_id=row.decision_id,
        label=row.label,
        comment=row.comment,
        requests=_requests_decoder.decode(row.request),
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
    )


def _delivery_out(row: DeliveryRecord) -> DeliveryOut:
    return DeliveryOut(**msgspec.structs.asdict(row))


@get(
    "/v1/writebacks",
    summary="Write-backs",
    tags=["webhooks"],
    guards=[admin_guard],
    sync_to_thread=True,
    responses=problems(401, 403, 422, 503),
)
def list_writebacks(
    runtime: Runtime,
    status: Annotated[str | None, Parameter(description="pending, done, failed, dry-run or superseded")] = None,
    ticket_ref: str | None = None,
    limit: Limit = 100,
) -> WritebacksResponse:
    """Stored write-backs, newest first (admin token)."""
    rows = runtime.store.list_writebacks(limit, status, ticket_ref)
    return WritebacksResponse(writebacks=[_writeback_out(row) for row in rows])


@post(
    "/v1/writebacks/retry",
    summary="Retry failed write-backs now",
    tags=["webhooks"],
    guards=[admin_guard, json_body_guard],
    status_code=200,
    responses=problems(400, 401, 403, 415, 422, 503),
    operation_class=OptionalBodyOperation,
)
async def retry_writebacks(writeback_worker: WriteBackWorker, data: RetryRequest | None = None) -> RetryResponse:
    """Retry failed write-backs (all, or ``ids``) now and answer with their new state (admin token)."""
    ids = None if data is None else data.ids
    store = writeback_worker.store
    chosen = await anyio.to_thread.run_sync(lambda: store.retry_writebacks(time.time(), ids))
    if chosen:
        await writeback_worker.run_due(chosen)
    # Report every chosen row, including any the background worker happened to claim first.
    rows = await anyio.to_thread.run_sync(lambda: [store.get_writeback(i) for i in chosen])
    return RetryResponse(retried=len(chosen), writebacks=[_writeback_out(row) for row in rows if row is not None])


@get(
    "/v1/webhooks/deliveries",
    summary="Processed webhook deliveries",
    tags=["webhooks"],
    guards=[admin_guard],
    sync_to_thread=True,
    responses=problems(401, 403, 422, 503),
)
def list_deliveries(
    runtime: Runtime,
    tracker: str | None = None,
    outcome: Annotated[str | None, Parameter(description="classified, ignored or correction")] = None,
    limit: Limit = 100,
) -> DeliveriesResponse:
    """Deliveries with their outcome and reason, newest first (admin token)."""
    rows = runtime.store.list_deliveries(limit, tracker, outcome)
    return DeliveriesResponse(deliveries=[_delivery_out(row) for row in rows])


WEBHOOK_HANDLERS = [github_webhook, gitlab_webhook, jira_webhook, list_writebacks, retry_writebacks, list_deliveries]
