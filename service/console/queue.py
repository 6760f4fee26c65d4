"""The triage queue: decisions that abstained or were close, newest first; one click or key names the team."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, Parameter
from litestar.response import Redirect
from msgspec import Meta

from service.console.access import BASE, console_guard
from service.console.render import page, runtime_of, team_names, ticket_link, user_of
from service.corrections import record_correction
from service.errors import NotFoundError
from service.schemas import FeedbackRequest
from service.store import TriageItem
from service.triage import top_two_margin

__all__ = ["QueueController"]

PAGE = 25
BODY_PREVIEW = 600
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Cursor = Annotated[str | None, Parameter(min_length=1, max_length=64, pattern=r"^[0-9a-f]+$")]


class QueueCorrection(msgspec.Struct):
    """A team picked in the queue; ``before`` and ``focus`` bring the person back to the same place."""

    team: Annotated[str, Meta(min_length=1, max_length=64)]
    before: str = ""
    focus: str = ""


class QueueController(Controller):
    """The queue page and the correction its buttons post."""

    path = BASE
    guards = [console_guard]  # noqa: RUF012 - Litestar reads these as class attributes
    include_in_schema = False

    @get("/queue", name="console-queue")
    async def queue(
        self, request: Request[Any, Any, Any], before: Cursor = None, corrected: Cursor = None
    ) -> Response[Any]:
        """A page of open triage rows with their decision, source and tracker link."""
        runtime = runtime_of(request)
        store = runtime.store

        def read() -> tuple[list[TriageItem], int, Any]:
            notice = store.corrections.get(corrected) if corrected else None
            return store.triage.page(PAGE + 1, before), store.triage.open_count(), notice

        items, total, notice = await anyio.to_thread.run_sync(read)
        names = team_names(runtime)
        shown = items[:PAGE]
        rows = [_row(request, item, names) for item in shown]
        more = shown[-1].triage.decision_id if len(items) > PAGE else None
        teams = list(names.items())
        return page(
            request, "queue.html", rows=rows, total=total, before=before or "", more=more, teams=teams, notice=notice
        )

    @post("/queue/{decision_id:str}/correct", status_code=303)
    async def correct(
        self, request: Request[Any, Any, Any], decision_id: str, data: Annotated[QueueCorrection, Form]
    ) -> Response[Any]:
        """The team a person picked: the same correction as ``POST /v1/feedback``; the ticket leaves the queue."""
        runtime = runtime_of(request)
        store = runtime.store
        row = await anyio.to_thread.run_sync(store.triage.get, decision_id)
        if row is None:
            raise NotFoundError(f"decision {decision_id!r} is not in the triage queue")
        feedback = FeedbackRequest(
            team=data.team,
            decision_id=decision_id,
            title=row.title or None,
            body=row.body or None,
            actor=user_of(request),
        )
        taxonomy = runtime.holder.taxonomy
        record = await anyio.to_thread.run_sync(lambda: record_correction(store, taxonomy, feedback, source="console"))
        query = {"corrected": record.id}
        if data.before and data.before.isalnum():
            query["before"] = data.before
        anchor = f"#item-{data.focus}" if data.focus.isalnum() else "#queue"
        return Redirect(f"{BASE}/queue?{urlencode(query)}{anchor}", status_code=303)


def _row(request: Request[Any, Any, Any], item: TriageItem, names: dict[str, str]) -> dict[str, Any]:
    decision, triage = item.decision, item.triage
    ranked = sorted(decision.scores.items(), key=lambda kv: -kv[1])
    body = triage.body
    return {
        "id": decision.id,
        "created_at": decision.created_at,
        "source": decision.source,
        "reason": triage.reason,
        "ticket_ref": triage.ticket_ref,
        "link": ticket_link(request, triage.ticket_ref, triage.url),
        "title": triage.title,
        "body": body[:BODY_PREVIEW],
        "body_rest": body[BODY_PREVIEW:],
        "team": decision.team,
        "team_name": names.get(decision.team, decision.team),
        "confidence": decision.confidence,
        "margin": top_two_margin(decision.scores),
        "top": [(team, names.get(team, team), score) for team, score in ranked[:3]],
        "model_version": decision.model_version,
    }
