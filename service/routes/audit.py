"""The audit trail, one decision at a time: what ``X-Decision-Id`` and a batch result's ``decision_id`` point to."""

from __future__ import annotations

import anyio
from litestar import get
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from service.auth import token_guard
from service.errors import NotFoundError
from service.openapi import problems
from service.routes.classify import DECISION_EXAMPLE, DECISION_ID_EXAMPLE
from service.runtime import Runtime
from service.schemas import DecisionOut

__all__ = ["get_decision"]


@get(
    "/v1/decisions/{decision_id:str}",
    summary="One decision of the audit trail",
    tags=["feedback"],
    guards=[token_guard],
    responses={
        200: ResponseSpec(
            data_container=DecisionOut,
            description="The recorded decision",
            examples=[
                Example(
                    id="corrected",
                    summary="An SRE decision a person corrected to Development",
                    value={
                        "id": DECISION_ID_EXAMPLE,
                        "created_at": 1796404555.46,
                        "source": "api",
                        "ticket_ref": None,
                        "team": DECISION_EXAMPLE["team"],
                        "confidence": DECISION_EXAMPLE["confidence"],
                        "abstained": False,
                        "scores": DECISION_EXAMPLE["scores"],
                        "model_version": DECISION_EXAMPLE["model_version"],
                        "text_sha256": "5c1e0b0f3f1f4b8e9d1c2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d",
                        "corrected_to": ["Development"],
                    },
                )
            ],
            generate_examples=False,
        ),
        **problems(401, 404),
    },
)
async def get_decision(decision_id: str, runtime: Runtime) -> DecisionOut:
    """A recorded decision by its id: the team, scores and model version, where it came from, and any
    corrections people made to it (the ticket's text is never stored, only its sha256)."""
    record = await anyio.to_thread.run_sync(runtime.store.audit.get, decision_id)
    if record is None:
        raise NotFoundError(f"no decision {decision_id!r} in the audit trail")
    corrections = await anyio.to_thread.run_sync(runtime.store.corrections.for_decision, decision_id)
    return DecisionOut(
        id=record.id,
        created_at=record.created_at,
        source=record.source,
        ticket_ref=record.ticket_ref,
        team=record.team,
        confidence=record.confidence,
        abstained=record.abstained,
        scores=record.scores,
        model_version=record.model_version,
        text_sha256=record.text_sha256,
        corrected_to=[c.team for c in corrections],
    )
