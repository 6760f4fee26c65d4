"""What every kind of delivery handling shares: recording outcomes, deciding a ticket, planning write-backs.

``Intake`` is built from this base and the mixins for people's labels (``people.py``) and for
questions (``questions.py``); each handles its verdicts with these helpers, so a delivery is
always stored the same way, with what it caused, before it is answered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

import anyio
import msgspec

from model.rules import RuleFacts
from service.config import WriteBackMode
from service.decisions import DecisionWorker, Recorded
from service.serving import ModelHolder
from service.settings import Settings
from service.store import DeliveryRecord, Store, WritebackRecord, new_id
from service.trackers.base import Interpreted, Ticket, Tracker
from service.webhooks.comments import comment_text
from service.webhooks.labels import LabelPlan, owned_labels, plan_labels
from service.webhooks.schemas import WebhookResult

__all__ = ["CLAIM_STALE_SECONDS", "DeliveryDesk", "effective_mode", "facts_of_ticket"]

log = logging.getLogger("ticket_router.webhooks")

# A claim on a delivery older than this belonged to a process that died; a redelivery may take it over.
CLAIM_STALE_SECONDS = 60.0


def effective_mode(settings: Settings, tracker: Tracker) -> WriteBackMode:
    """The write-back mode in force: ``dry-run`` for an insecure development tracker without credentials."""
    mode = settings.write_back_for(tracker.name)
    if mode != "dry-run" and tracker.auth_headers() is None:
        return "dry-run"
    return mode


def facts_of_ticket(tracker: str, ticket: Ticket) -> RuleFacts:
    """What the routing rules see of a tracker's ticket."""
    return RuleFacts(ticket.title, tracker, ticket.repository, ticket.author, ticket.labels)


class DeliveryDesk:
    """The parts and helpers every delivery handler uses."""

    def __init__(
        self,
        settings: Settings,
        trackers: Mapping[str, Tracker],
        store: Store,
        holder: ModelHolder,
        decisions: DecisionWorker,
        wake_writer: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.trackers = trackers
        self.store = store
        self.holder = holder
        self.decisions = decisions
        self.wake_writer = wake_writer

    # -- deciding ---------------------------------------------------------------------------

    async def _decide(self, tracker: str, delivery_id: str, ticket: Ticket, body: str | None = None) -> Recorded | None:
        """Claim the delivery, then decide ``ticket`` (with ``body`` instead of its own); None when claimed elsewhere.

        The claim comes first, so that a redelivery reaching another replica at the same moment
        does not decide it too; it is given back if deciding fails.
        """
        outbox = self.store.outbox
        if not await anyio.to_thread.run_sync(outbox.claim_delivery, tracker, delivery_id, CLAIM_STALE_SECONDS):
            return None
        try:
            text = ticket.body if body is None else body
            decide = [(None, ticket.title, text, ticket.repository)]
            facts = [facts_of_ticket(tracker, ticket)]
            link = ticket.url or self.trackers[tracker].web_url(ticket.ref)
            [recorded] = await self.decisions.decide(decide, tracker, [ticket.ref], [link], facts=facts)
        except BaseException:
            await anyio.to_thread.run_sync(outbox.release_delivery, tracker, delivery_id)
            raise
        return recorded

    def _plan(self, tracker: str, ticket: Ticket, wanted: str, ours: set[str]) -> LabelPlan:
        """The labels to write for ``wanted``: only labels we own, only ours taken away, never protected ones."""
        owned = owned_labels(self.holder.taxonomy, tracker, self.settings.triage_label)
        return plan_labels(wanted, ticket.labels, ours, owned, self.settings.protected_labels)

    def _decision_comment(self, tracker: str, recorded: Recorded, wanted: str) -> str:
        """The ``label+comment`` comment for a decision, naming the teams' labels on ``tracker``."""
        teams = self.holder.taxonomy.teams
        labels = {team.id: team.label_for(tracker) for team in teams}
        names = {team.id: team.name for team in teams}
        return comment_text(recorded.decision, wanted, recorded.decision_id, labels, names)

    def _writeback(
        self,
        tracker: Tracker,
        ticket_ref: str,
        decision_id: str,
        label: str,
        plan: LabelPlan,
        comment: str | None,
    ) -> WritebackRecord:
        """The stored write-back of ``plan``'s labels and ``comment`` (sent later by the worker, never in dry-run)."""
        requests = tracker.label_requests(ticket_ref, plan.add, plan.remove)
        if comment is not None:
            # The decision id in the comment is how a retry finds it already posted.
            requests.append(tracker.comment_request(ticket_ref, comment, marker=decision_id))
        mode = effective_mode(self.settings, tracker)
        now = time.time()
        return WritebackRecord(
            id=new_id(),
            created_at=now,
            updated_at=now,
            tracker=tracker.name,
            ticket_ref=ticket_ref,
            decision_id=decision_id,
            label=label,
            comment=comment,
            request=msgspec.json.encode(requests).decode(),
            status="dry-run" if mode == "dry-run" else "pending",
            next_attempt_at=None if mode == "dry-run" else now,
        )

    # -- recording --------------------------------------------------------------------------

    async def _ignore(
        self, tracker: str, delivery_id: str, interpreted: Interpreted, reason: str, supersede: bool = False
    ) -> WebhookResult:
        delivery = self._delivery(tracker, delivery_id, interpreted, "ignored", reason)
        ref = interpreted.ticket_ref if supersede else None
        if not await anyio.to_thread.run_sync(lambda: self.store.outbox.record_delivery(delivery, supersede=ref)):
            return await self._raced(tracker, delivery_id)
        log.info("%s delivery %s ignored: %s", tracker, delivery_id, reason)
        return WebhookResult(tracker, delivery_id, "ignored", reason, ticket_ref=interpreted.ticket_ref)

    def _delivery(
        self,
        tracker: str,
        delivery_id: str,
        interpreted: Interpreted,
        outcome: str,
        reason: str,
        decision_id: str | None = None,
    ) -> DeliveryRecord:
        return DeliveryRecord(
            tracker=tracker,
            delivery_id=delivery_id,
            received_at=time.time(),
            event=interpreted.event[:100],
            action=None if interpreted.action is None else interpreted.action[:100],
            ticket_ref=interpreted.ticket_ref,
            outcome=outcome,
            reason=reason,
            decision_id=decision_id,
        )

    def _duplicate(self, tracker: str, seen: DeliveryRecord) -> WebhookResult:
        if seen.outcome == "processing":
            reason = "delivery being processed (here or by another replica); nothing done again"
        else:
            reason = f"delivery already processed ({seen.outcome}); nothing done again"
        log.info("%s delivery %s is a redelivery", tracker, seen.delivery_id)
        return WebhookResult(
            tracker, seen.delivery_id, "duplicate", reason, ticket_ref=seen.ticket_ref, decision_id=seen.decision_id
        )

    async def _raced(self, tracker: str, delivery_id: str) -> WebhookResult:
        """The same delivery was stored meanwhile (a concurrent redelivery): report the stored one."""
        seen = await anyio.to_thread.run_sync(self.store.outbox.get_delivery, tracker, delivery_id)
        if seen is None:  # pragma: no cover - an insert failed on the key, so the row exists
            raise RuntimeError("delivery insert failed without a stored delivery")
        return self._duplicate(tracker, seen)
