"""Try a ticket: paste a title and body, see the decision, every team's score and the words behind it."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from msgspec import Meta

from model.highlight import highlight
from service.console.access import BASE, console_guard
from service.console.render import page, runtime_of, team_names, user_of
from service.corrections import record_correction
from service.schemas import ClassifyRequest, FeedbackRequest
from service.triage import top_two_margin

__all__ = ["TryController"]

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
TeamId = Annotated[str, Meta(min_length=1, max_length=64)]


class TryForm(msgspec.Struct):
    """A ticket to try."""

    title: str = ""
    body: str = ""


class TryCorrection(msgspec.Struct):
    """The right team for a decision made on this page, with the text it was made on."""

    team: TeamId
    title: str = ""
    body: str = ""


class TryController(Controller):
    """The console's home page."""

    path = BASE
    guards = [console_guard]  # noqa: RUF012 - Litestar reads these as class attributes
    include_in_schema = False

    @get("/", name="console-home")
    async def home(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """The empty form."""
        return page(request, "try.html", title="", body="", error=None, result=None)

    @post("/try", status_code=200)
    async def try_ticket(self, request: Request[Any, Any, Any], data: Annotated[TryForm, Form]) -> Response[Any]:
        """Decide the ticket (recorded in the audit trail as a console decision) and show why."""
        try:
            ticket = msgspec.convert({"title": data.title or None, "body": data.body or None}, ClassifyRequest)
        except msgspec.ValidationError:
            error = "Give the ticket a title or a body."
            return page(request, "try.html", 422, title=data.title, body=data.body, error=error, result=None)
        runtime = runtime_of(request)
        [recorded] = await runtime.decisions.decide([(None, *ticket.parts)], "console")
        decision = recorded.decision
        names = team_names(runtime)
        bars = [
            {"id": team, "name": names.get(team, team), "score": score, "top": team == decision.team}
            for team, score in sorted(decision.scores.items(), key=lambda kv: -kv[1])
        ]
        result = {
            "decision_id": recorded.decision_id,
            "decision": decision,
            "team_name": names.get(decision.team, decision.team),
            "bars": bars,
            "margin": top_two_margin(decision.scores),
            "title_segments": highlight(data.title, decision.explanation),
            "body_segments": highlight(data.body, decision.explanation),
        }
        return page(request, "try.html", title=data.title, body=data.body, error=None, result=result)

    @post("/try/{decision_id:str}/correct", status_code=303)
    async def correct(
        self, request: Request[Any, Any, Any], decision_id: str, data: Annotated[TryCorrection, Form]
    ) -> Response[Any]:
        """Record the right team for a decision made here: the same correction as ``POST /v1/feedback``."""
        runtime = runtime_of(request)
        feedback = FeedbackRequest(
            team=data.team,
            decision_id=decision_id,
            title=data.title or None,
            body=data.body or None,
            actor=user_of(request),
        )
        taxonomy = runtime.holder.taxonomy
        record = await anyio.to_thread.run_sync(
            lambda: record_correction(runtime.store, taxonomy, feedback, source="console")
        )
        return Redirect(f"{BASE}/corrections?corrected={record.id}", status_code=303)
