"""Deliveries and write-backs: what each webhook delivery became and why, and the write-backs that failed."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect
from msgspec import Meta

from service.console.access import BASE, console_guard
from service.console.render import page, runtime_of, ticket_link
from service.store import DeliveryRecord, WritebackRecord
from service.webhooks.writeback import WriteBackWorker

__all__ = ["OutboxController"]

LIMIT = 50
OUTCOMES = ("classified", "ignored", "correction", "processing")
Form = Body(media_type=RequestEncodingType.URL_ENCODED)


class RetryForm(msgspec.Struct):
    """One write-back to retry, or none for every failed one."""

    id: Annotated[str, Meta(max_length=64)] = ""


class OutboxController(Controller):
    """The deliveries page and its retry button."""

    path = BASE
    guards = [console_guard]  # noqa: RUF012 - Litestar reads these as class attributes
    include_in_schema = False

    @get("/deliveries", name="console-deliveries")
    async def deliveries(
        self,
        request: Request[Any, Any, Any],
        outcome: Annotated[str | None, Parameter(max_length=20)] = None,
        retried: Annotated[int | None, Parameter(ge=0, le=100_000)] = None,
    ) -> Response[Any]:
        """Recent deliveries with outcome and reason; failed write-backs with their last error."""
        outbox = runtime_of(request).store.outbox
        chosen = outcome if outcome in OUTCOMES else None

        def read() -> tuple[list[DeliveryRecord], list[WritebackRecord]]:
            return outbox.list_deliveries(LIMIT, None, chosen), outbox.list_writebacks(LIMIT, "failed")

        deliveries, failed = await anyio.to_thread.run_sync(read)
        refs = {row.ticket_ref for row in deliveries} | {row.ticket_ref for row in failed}
        links = {ref: ticket_link(request, ref) for ref in refs if ref}
        return page(
            request,
            "deliveries.html",
            deliveries=deliveries,
            failed=failed,
            links=links,
            outcome=chosen,
            outcomes=OUTCOMES,
            retried=retried,
        )

    @post("/writebacks/retry", status_code=303)
    async def retry(self, request: Request[Any, Any, Any], data: Annotated[RetryForm, Form]) -> Response[Any]:
        """Retry one failed write-back (or all) now, as ``POST /v1/writebacks/retry`` does."""
        worker: WriteBackWorker = request.app.state.writeback_worker
        retried, _ = await worker.retry([data.id] if data.id else None)
        return Redirect(f"{BASE}/deliveries?retried={retried}#failed", status_code=303)
