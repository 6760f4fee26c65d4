"""Bodies of the webhook and write-back endpoints (our own API: unknown fields are refused)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from service.schemas import RowId

__all__ = [
    "DeliveriesResponse",
    "DeliveryOut",
    "RetryRequest",
    "RetryResponse",
    "WebhookResult",
    "WritebackOut",
    "WritebacksResponse",
]

Outcome = Literal["classified", "ignored", "correction", "duplicate", "skipped", "answered", "outcome"]


class WebhookResult(msgspec.Struct, omit_defaults=True):
    """What we did with a delivery: classified (and what we will write), ignored and why, a correction,
    skipped by a rule, an answer to our question, or a closing that recorded the ticket's human team."""

    tracker: str
    delivery_id: str
    outcome: Outcome
    reason: str
    ticket_ref: str | None = None
    decision_id: str | None = None
    team: str | None = None
    confidence: float | None = None
    abstained: bool | None = None
    write_back: Literal["pending", "dry-run"] | None = None
    writeback_id: str | None = None
    label: str | None = None
    correction_id: str | None = None
    rule: str | None = None
    question: str | None = None


class WritebackOut(msgspec.Struct):
    """A stored write-back: the requests still to make (no credentials) and how the attempts went."""

    id: str
    created_at: float
    updated_at: float
    tracker: str
    ticket_ref: str
    status: str
    attempts: int
    decision_id: str | None
    label: str | None
    comment: str | None
    requests: list[dict[str, object]]
    next_attempt_at: float | None
    last_error: str | None


class WritebacksResponse(msgspec.Struct):
    """Write-backs, newest first."""

    writebacks: list[WritebackOut]


class RetryRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Which failed write-backs to retry now; all of them when ``ids`` is left out."""

    ids: Annotated[list[RowId], Meta(max_length=1000)] | None = None


class RetryResponse(msgspec.Struct):
    """The write-backs scheduled for a retry now (status ``pending``); the worker sends them in the background."""

    scheduled: int
    writebacks: list[WritebackOut]


class DeliveryOut(msgspec.Struct):
    """A processed delivery and its outcome."""

    tracker: str
    delivery_id: str
    received_at: float
    event: str
    action: str | None
    ticket_ref: str | None
    outcome: str
    reason: str | None
    decision_id: str | None


class DeliveriesResponse(msgspec.Struct):
    """Deliveries, newest first."""

    deliveries: list[DeliveryOut]
