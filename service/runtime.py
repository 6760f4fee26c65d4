"""The running service's parts, built at start-up and shared by every handler."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from litestar.datastructures import State

from model.decision import Decision
from model.registry import Registry
from model.text import fingerprint
from service.audit import AuditLog
from service.serving import ModelHolder
from service.settings import Settings
from service.store import DecisionRecord, Store

__all__ = ["Runtime", "decision_record", "new_id", "provide_runtime"]


@dataclass(slots=True)
class Runtime:
    """Settings, registry, store, audit writer and the served model: the app's only shared state."""

    settings: Settings
    registry: Registry
    store: Store
    holder: ModelHolder
    audit: AuditLog


def provide_runtime(state: State) -> Runtime:
    """Dependency: the app's runtime."""
    runtime: Runtime = state.runtime
    return runtime


def new_id() -> str:
    """A sortable unique id: milliseconds since the epoch, then randomness (32 hex digits)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def decision_record(
    decision: Decision, source: str, text: str, ticket_ref: str | None = None, record_id: str | None = None
) -> DecisionRecord:
    """The audit row of a decision; stores a hash of the text, never the text."""
    return DecisionRecord(
        id=record_id or new_id(),
        created_at=time.time(),
        source=source,
        ticket_ref=ticket_ref,
        text_sha256=fingerprint(text),
        team=decision.team,
        confidence=decision.confidence,
        abstained=decision.abstained,
        model_version=decision.model_version,
        scores=decision.scores,
    )
