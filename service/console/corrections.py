"""Corrections: who named which team for which ticket, from where, and how many the next training will use."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from litestar import Controller, Request, Response, get
from litestar.params import Parameter

from service.console.access import BASE, console_guard
from service.console.render import page, runtime_of, ticket_link
from service.corrections import trainable, training_count

__all__ = ["CorrectionsController"]

PAGE = 50
Cursor = Annotated[str | None, Parameter(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class CorrectionsController(Controller):
    """The corrections page."""

    path = BASE
    guards = [console_guard]  # noqa: RUF012 - Litestar reads these as class attributes
    include_in_schema = False

    @get("/corrections", name="console-corrections")
    async def corrections(
        self, request: Request[Any, Any, Any], before: Cursor = None, corrected: Cursor = None
    ) -> Response[Any]:
        """Corrections newest first, a page at a time, and the count the next training will use."""
        runtime = runtime_of(request)
        store = runtime.store
        taxonomy = runtime.holder.taxonomy

        def read() -> tuple[Any, ...]:
            records = store.corrections.page(PAGE + 1, before)
            used, dropped = training_count(store.corrections.all(), taxonomy)
            return records, used, dropped

        records, used, dropped = await anyio.to_thread.run_sync(read)
        shown = records[:PAGE]
        rows = [
            {
                "record": r,
                "trainable": trainable(r),
                "link": ticket_link(request, r.ticket_ref),
                "highlight": r.id == corrected,
            }
            for r in shown
        ]
        more = shown[-1].id if len(records) > PAGE else None
        return page(
            request,
            "corrections.html",
            rows=rows,
            used=used,
            dropped=dropped,
            before=before or "",
            more=more,
            corrected=corrected,
        )
