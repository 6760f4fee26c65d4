"""The triage policy: which decisions a person should look at, and keeping their texts no longer than needed.

A decision goes to triage when it abstained, or when its top two teams are within
``TICKET_ROUTER_TRIAGE_MARGIN`` of each other. Its title and body are then kept beside the
audit row (which holds only a hash) until a correction or a newer decision for the ticket takes
it out of the queue, and deleted after ``TICKET_ROUTER_TRIAGE_RETENTION_DAYS`` in any case.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Mapping

import anyio

from model.decision import Decision
from service.store import Store, TriageRecord

__all__ = ["EXEMPT_SOURCES", "prune_forever", "top_two_margin", "triage_of", "triage_reason"]

log = logging.getLogger("ticket_router.triage")

# A person trying a ticket in the console is already looking at its decision.
EXEMPT_SOURCES = frozenset({"console"})
PRUNE_EVERY = 3600.0


def top_two_margin(scores: Mapping[str, float]) -> float:
    """How far the best team's score is above the second best's."""
    if len(scores) < 2:
        return 1.0
    first, second = heapq.nlargest(2, scores.values())
    return first - second


def triage_reason(decision: Decision, margin: float) -> str | None:
    """``abstained``, ``close`` (the top two within ``margin``) or None when no person needs to look."""
    if decision.abstained:
        return "abstained"
    # The second score is at most 1 - confidence: most decisions are clear without looking further.
    if margin <= 0 or 2 * decision.confidence - 1 >= margin:
        return None
    return "close" if top_two_margin(decision.scores) < margin else None


def triage_of(
    decision_id: str,
    decision: Decision,
    source: str,
    title: str | None,
    body: str | None,
    margin: float,
    now: float,
    ticket_ref: str | None = None,
    url: str | None = None,
) -> TriageRecord | None:
    """The triage row of a decision, or None when it does not go to triage (a rule's decisions never do)."""
    if source in EXEMPT_SOURCES or decision.rule is not None:
        return None
    reason = triage_reason(decision, margin)
    if reason is None:
        return None
    return TriageRecord(
        decision_id=decision_id,
        created_at=now,
        reason=reason,
        title=title or "",
        body=body or "",
        ticket_ref=ticket_ref,
        url=url,
    )


async def prune_forever(store: Store, retention_days: int, interval: float = PRUNE_EVERY) -> None:
    """Delete triage texts older than the retention, now and then every ``interval`` seconds."""
    while True:
        cutoff = time.time() - retention_days * 86400
        try:
            removed = await anyio.to_thread.run_sync(store.triage.prune, cutoff)
        except Exception:  # keep trying; the rows stay until the next round
            log.exception("pruning the triage queue failed")
        else:
            if removed:
                log.info("deleted %d triage texts older than %d days", removed, retention_days)
        await asyncio.sleep(interval)
