"""Webhook endpoints, one per registered tracker, and the admin view of deliveries and write-backs.

Each webhook handler reads the raw body (signatures are over the exact bytes), hands it to
the intake and answers; the write-back worker is woken only after the answer has been sent.
The handlers are made by one function from the tracker registry, so every tracker's endpoint
has the same shape.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import State
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from service.auth import admin_guard, json_body_guard
from service.metrics import WEBHOOK_EVENTS
from service.openapi import ADMIN_TOKEN, OptionalBodyOperation, problems
from service.runtime import Runtime
from service.store import DeliveryRecord, WritebackRecord
from service.trackers.base import TrackerType
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

__all__ = ["OutboxController", "provide_intake", "provide_writebacks", "webhook_handler"]

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


def webhook_handler(kind: TrackerType) -> HTTPRouteHandler:
    """``POST /v1/webhooks/<tracker>``: receive one delivery of ``kind``."""
    name = kind.name

    async def receive(request: Request[Any, Any, Any], webhook_intake: Intake) -> Response[WebhookResult]:
        body = await request.body()
        try:
            result = await webhook_intake.receive(name, request.headers, body)
        except Exception:
            WEBHOOK_EVENTS.labels(name, "rejected").inc()
            raise
        WEBHOOK_EVENTS.labels(name, result.outcome).inc()
        wake = BackgroundTask(webhook_intake.wake_writer) if result.write_back == "pending" else None
        return Response(result, status_code=200, background=wake)

    receive.__name__ = f"{name}_webhook"
    receive.__doc__ = f"Receive a {kind.display_name} delivery."
    return post(
        f"/v1/webhooks/{name}",
        responses=WEBHOOK_PROBLEMS,
        summary=kind.route_summary,
        description=_DESCRIPTION.format(auth=kind.auth_description),
        tags=["webhooks"],
        status_code=200,
    )(receive)


Limit = Annotated[int, Parameter(ge=1, le=1000)]
_requests_decoder = msgspec.json.Decoder(list[dict[str, object]])
ADMIN_PROBLEMS = problems(401, 403, 422, 503)


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


class OutboxController(Controller):
    """What the webhooks did and what they still owe the trackers (admin token)."""

    path = "/v1"
    tags = ["webhooks"]  # noqa: RUF012 - Litestar reads these as class attributes
    guards = [admin_guard]  # noqa: RUF012

    @get("/writebacks", summary="Write-backs", sync_to_thread=True, security=ADMIN_TOKEN, responses=ADMIN_PROBLEMS)
    def list_writebacks(
        self,
        runtime: Runtime,
        status: Annotated[str | None, Parameter(description="pending, done, failed, dry-run or superseded")] = None,
        ticket_ref: str | None = None,
        limit: Limit = 100,
    ) -> WritebacksResponse:
        """Stored write-backs, newest first (admin token)."""
        rows = runtime.store.outbox.list_writebacks(limit, status, ticket_ref)
        return WritebacksResponse(writebacks=[_writeback_out(row) for row in rows])

    @post(
        "/writebacks/retry",
        summary="Retry failed write-backs now",
        guards=[json_body_guard],
        status_code=202,
        security=ADMIN_TOKEN,
        responses=problems(400, 401, 403, 415, 422, 503),
        operation_class=OptionalBodyOperation,
    )
    async def retry_writebacks(
        self, writeback_worker: WriteBackWorker, data: RetryRequest | None = None
    ) -> RetryResponse:
        """Make failed write-backs (all, or ``ids``) due now and answer at once with what was scheduled (admin token).

        The write-back worker sends them in the background; ``GET /v1/writebacks`` shows how they went.
        """
        scheduled, rows = await writeback_worker.retry(None if data is None else data.ids)
        return RetryResponse(scheduled=scheduled, writebacks=[_writeback_out(row) for row in rows])

    @get(
        "/webhooks/deliveries",
        summary="Processed webhook deliveries",
        sync_to_thread=True,
        security=ADMIN_TOKEN,
        responses=ADMIN_PROBLEMS,
    )
    def list_deliveries(
        self,
        runtime: Runtime,
        tracker: str | None = None,
        outcome: Annotated[str | None, Parameter(description="classified, ignored, correction or duplicate")] = None,
        limit: Limit = 100,
    ) -> DeliveriesResponse:
        """Deliveries with their outcome and reason, newest first (admin token)."""
        rows = runtime.store.outbox.list_deliveries(limit, tracker, outcome)
        return DeliveriesResponse(deliveries=[_delivery_out(row) for row in rows])
