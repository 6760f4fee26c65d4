"""Corrections from people: the right team for a decision or a ticket, kept for the next training."""

from __future__ import annotations

from typing import Annotated

import anyio
from litestar import get, post
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter

from service.auth import json_body_guard, token_guard
from service.corrections import record_correction, trainable
from service.openapi import ANY_TOKEN, problems
from service.routes.classify import DECISION_ID_EXAMPLE, TICKET_EXAMPLE
from service.runtime import Runtime
from service.schemas import FeedbackOut, FeedbackPage, FeedbackRequest
from service.store import CorrectionRecord

__all__ = ["create_feedback", "list_feedback"]


def _out(record: CorrectionRecord) -> FeedbackOut:
    return FeedbackOut(
        id=record.id,
        created_at=record.created_at,
        source=record.source,
        team=record.team,
        previous_team=record.previous_team,
        decision_id=record.decision_id,
        ticket_ref=record.ticket_ref,
        actor=record.actor,
        trainable=trainable(record),
    )


@post(
    "/v1/feedback",
    status_code=201,
    summary="Record a correction",
    tags=["feedback"],
    guards=[token_guard, json_body_guard],
    security=ANY_TOKEN,
    responses=problems(400, 401, 404, 415, 422, 503),
)
async def create_feedback(
    data: Annotated[
        FeedbackRequest,
        Body(
            examples=[
                Example(
                    id="decision",
                    summary="The right team for a decision, with its text so that it can train",
                    value={"decision_id": DECISION_ID_EXAMPLE, "team": "Development", "actor": "ana", **TICKET_EXAMPLE},
                ),
                Example(
                    id="text",
                    summary="The right team for a ticket's text",
                    value={"text": "Rotate the Vault unseal keys for the shared cluster", "team": "Platform"},
                ),
            ]
        ),
    ],
    runtime: Runtime,
) -> FeedbackOut:
    """Store the right team for a decision id or a ticket text; it trains the next model."""
    taxonomy = runtime.holder.taxonomy
    record = await anyio.to_thread.run_sync(record_correction, runtime.store, taxonomy, data)
    return _out(record)


@get(
    "/v1/feedback",
    summary="List corrections",
    tags=["feedback"],
    guards=[token_guard],
    security=ANY_TOKEN,
    responses=problems(401, 422),
)
async def list_feedback(
    runtime: Runtime,
    limit: Annotated[int, Parameter(ge=1, le=500)] = 50,
    before: Annotated[str | None, Parameter(min_length=1, max_length=64)] = None,
) -> FeedbackPage:
    """Corrections from every source (API, GitHub, GitLab, Jira), newest first, a page at a time."""
    records = await anyio.to_thread.run_sync(lambda: runtime.store.corrections.page(limit + 1, before))
    page = records[:limit]
    return FeedbackPage(items=[_out(r) for r in page], next=page[-1].id if len(records) > limit else None)
