"""One delivery from raw bytes to a stored outcome: verify, de-duplicate, decide, persist, answer.

Everything the answer promises is committed before the answer: the decision (in the audit
trail, by the decision worker), the delivery (its primary key is the de-duplication) and, when
labels are due, the write-back row with the exact requests. The requests themselves are sent
later by the write-back worker. People's relabels and closings are handled in ``people.py``,
questions and their answers in ``questions.py``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping

import anyio

from service.config import PREFIX
from service.store import WritebackRecord
from service.trackers.base import Answer, Classify, Closed, Interpreted, Relabel, Ticket, Tracker
from service.trackers.errors import TrackerDisabledError
from service.webhooks.comments import question_comment
from service.webhooks.desk import CLAIM_STALE_SECONDS, effective_mode, facts_of_ticket
from service.webhooks.labels import wanted_label
from service.webhooks.people import PeopleDesk
from service.webhooks.questions import QuestionDesk
from service.webhooks.schemas import WebhookResult

__all__ = ["CLAIM_STALE_SECONDS", "Intake", "delivery_id_of", "effective_mode", "facts_of_ticket", "fingerprint_of"]

log = logging.getLogger("ticket_router.webhooks")

_MAX_ID = 200  # the delivery_id column's width


def fingerprint_of(tracker: str, interpreted: Interpreted, body: bytes) -> str:
    """What makes two deliveries the same event: tracker, ticket, action and the exact body."""
    digest = hashlib.sha256(body).hexdigest()
    key = f"{tracker}\n{interpreted.ticket_ref or ''}\n{interpreted.action or ''}\n{digest}"
    return hashlib.sha256(key.encode()).hexdigest()


def delivery_id_of(tracker: Tracker, headers: Mapping[str, str], body: bytes) -> str:
    """The delivery's id from its tracker's header; without one, a digest of the body (equal on a resend)."""
    for name in tracker.delivery_headers:
        value = (headers.get(name) or "").strip()
        if value and len(value) <= _MAX_ID:
            return value
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Intake(PeopleDesk, QuestionDesk):
    """Receives deliveries for every registered tracker."""

    def startup_lines(self) -> list[str]:
        """One line per tracker for the start-up log: enabled or not, and how it writes back."""
        lines = []
        for tracker in self.trackers.values():
            shown, group = tracker.display_name, tracker.settings
            if not self.enabled(tracker):
                lines.append(f"{shown} webhooks: disabled (set {group.secret_variables} to enable them)")
                continue
            how = "signature verified" if group.secured else "UNVERIFIED (development only)"
            mode = effective_mode(self.settings, tracker)
            lines.append(
                f"{shown} webhooks: enabled at /v1/webhooks/{tracker.name}, {how}, write-back {mode}"
                + (f" (as {group.bot})" if group.bot else "")
            )
        return lines

    def startup_warnings(self) -> list[str]:
        """What an operator must know about the webhook configuration (logged at start-up)."""
        warnings = []
        for tracker in self.trackers.values():
            group, shown = tracker.settings, tracker.display_name
            if group.secured:
                continue
            if not self.settings.insecure_webhooks:
                if tracker.auth_headers() is not None:
                    warnings.append(
                        f"{shown} write-back credentials are set but {group.secret_variables}"
                        f" is not: {shown} webhooks are disabled (their endpoint answers 404)"
                    )
                continue
            warnings.append(
                f"{shown} webhooks accept UNVERIFIED deliveries"
                f" ({PREFIX}INSECURE_WEBHOOKS is on and {group.secret_variables} is unset): development only"
            )
            mode = self.settings.write_back_for(tracker.name)
            if mode != "dry-run" and effective_mode(self.settings, tracker) == "dry-run":
                missing = ", ".join(group.missing_credentials())
                warnings.append(f"{shown} write-back runs as dry-run: {missing} not set")
        return warnings

    def enabled(self, tracker: Tracker) -> bool:
        """Whether deliveries for ``tracker`` are accepted at all."""
        return tracker.settings.secured or self.settings.insecure_webhooks

    def verify(self, tracker: Tracker, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``TrackerDisabledError`` or ``SignatureError`` unless the delivery is authentic."""
        if not self.enabled(tracker):
            raise TrackerDisabledError(
                f"{tracker.display_name} webhooks are disabled: set {tracker.settings.secret_variables} to enable them"
            )
        if tracker.settings.secured:
            tracker.verify(headers, body)

    async def receive(self, name: str, headers: Mapping[str, str], body: bytes) -> WebhookResult:
        """Process one delivery and say what was done; the write-back, if any, is stored, not sent."""
        tracker = self.trackers[name]
        self.verify(tracker, headers, body)
        delivery_id = delivery_id_of(tracker, headers, body)
        seen = await anyio.to_thread.run_sync(self.store.outbox.get_delivery, name, delivery_id)
        if seen is not None:
            return self._duplicate(name, seen)
        interpreted = tracker.interpret(headers, body)
        window = self.settings.webhook_replay_window_hours * 3600
        if not window:
            return await self._act(tracker, delivery_id, interpreted)
        # The delivery id is outside the signature: the same signed body under a new id is a replay.
        fingerprint = fingerprint_of(name, interpreted, body)
        outbox = self.store.outbox
        first = await anyio.to_thread.run_sync(
            lambda: outbox.claim_fingerprint(name, fingerprint, delivery_id, time.time(), window)
        )
        if first != delivery_id:
            return await self._replayed(name, delivery_id, interpreted, first)
        try:
            return await self._act(tracker, delivery_id, interpreted)
        except BaseException:
            await anyio.to_thread.run_sync(outbox.release_fingerprint, name, fingerprint, delivery_id)
            raise

    async def _act(self, tracker: Tracker, delivery_id: str, interpreted: Interpreted) -> WebhookResult:
        name = tracker.name
        match interpreted.verdict:
            case Relabel() as relabel:
                return await self._relabel(tracker, delivery_id, interpreted, relabel)
            case Classify(ticket=ticket):
                return await self._classify(tracker, delivery_id, interpreted, ticket)
            case Answer() as answer:
                return await self._answer(tracker, delivery_id, interpreted, answer)
            case Closed() as closed:
                return await self._closed(tracker, delivery_id, interpreted, closed)
            case ignore:
                return await self._ignore(name, delivery_id, interpreted, ignore.reason)

    async def _replayed(self, tracker: str, delivery_id: str, interpreted: Interpreted, first: str) -> WebhookResult:
        hours = self.settings.webhook_replay_window_hours
        reason = (
            f"the same content as delivery {first} within {hours:g} h (a replay under a new id); nothing done again"
        )
        delivery = self._delivery(tracker, delivery_id, interpreted, "duplicate", reason)
        if not await anyio.to_thread.run_sync(lambda: self.store.outbox.record_delivery(delivery)):
            return await self._raced(tracker, delivery_id)
        log.warning("%s delivery %s replays delivery %s", tracker, delivery_id, first)
        return WebhookResult(tracker, delivery_id, "duplicate", reason, ticket_ref=interpreted.ticket_ref)

    async def _classify(
        self, tracker: Tracker, delivery_id: str, interpreted: Interpreted, ticket: Ticket
    ) -> WebhookResult:
        name = tracker.name
        if not ticket.has_text:
            return await self._ignore(name, delivery_id, interpreted, "the ticket has neither title nor body")
        taxonomy = self.holder.taxonomy
        outbox = self.store.outbox
        ours = await anyio.to_thread.run_sync(outbox.our_labels, name, ticket.ref)
        human = [
            label for label in ticket.labels if taxonomy.team_for_label(name, label) and label.casefold() not in ours
        ]
        if human:
            reason = f"the ticket already carries team label {human[0]!r} set by a person; people's labels win"
            return await self._ignore(name, delivery_id, interpreted, reason, supersede=True)
        recorded = await self._decide(name, delivery_id, ticket)
        if recorded is None:
            return await self._raced(name, delivery_id)
        decision = recorded.decision
        if decision.skipped:
            reason = f"rule {decision.rule!r} says to leave this ticket alone: nothing written"
            delivery = self._delivery(name, delivery_id, interpreted, "skipped", reason, recorded.decision_id)
            if not await anyio.to_thread.run_sync(lambda: outbox.record_delivery(delivery)):
                return await self._raced(name, delivery_id)
            log.info("%s delivery %s for %s %s", name, delivery_id, ticket.ref, reason)
            return WebhookResult(
                name, delivery_id, "skipped", reason, ticket_ref=ticket.ref, decision_id=recorded.decision_id
            )
        asked = await anyio.to_thread.run_sync(self.store.questions.get, ticket.ref)
        if asked is not None and asked.status == "asked":
            # An edit while our question waits: the new text is the answer.
            actor = ticket.author or "the reporter"
            return await self._answered(tracker, delivery_id, interpreted, ticket, recorded, asked, actor)
        question = self._question_for(decision, ticket) if asked is None else None
        if question is not None and not await self._ask(name, ticket.ref, recorded.decision_id, question):
            question = None  # asked meanwhile by another delivery: at most one question per ticket
        unclear = decision.abstained or question is not None
        wanted = wanted_label(taxonomy, name, decision.team, unclear, self.settings.triage_label)
        plan = self._plan(name, ticket, wanted, ours)
        if decision.rule is not None:
            routed = f"routed to {decision.team} by rule {decision.rule!r}: {wanted}"
        elif decision.abstained:
            routed = f"abstained (best {decision.team} at {decision.confidence:.2f}): {wanted}"
        elif question is not None:
            routed = f"too close to call ({' or '.join(question.teams)}): {wanted}"
        else:
            routed = f"routed to {decision.team} at {decision.confidence:.2f}: {wanted}"
        if question is not None:
            routed += f"; asked the reporter: {question.text.splitlines()[1]} / {question.text.splitlines()[2]}"
        mode = effective_mode(self.settings, tracker)
        writeback: WritebackRecord | None = None
        if plan.empty and question is None:
            reason = f"{routed}; the ticket already carries it, nothing to write"
        else:
            comment = question_comment(question, recorded.decision_id) if question is not None else None
            if comment is None and mode == "label+comment":
                comment = self._decision_comment(name, recorded, wanted)
            writeback = self._writeback(tracker, ticket.ref, recorded.decision_id, wanted, plan, comment)
            reason = f"{routed} ({'dry-run: nothing written' if mode == 'dry-run' else 'write-back pending'})"
        delivery = self._delivery(name, delivery_id, interpreted, "classified", reason, recorded.decision_id)
        if not await anyio.to_thread.run_sync(lambda: outbox.record_delivery(delivery, writeback)):
            return await self._raced(name, delivery_id)
        log.info("%s delivery %s for %s %s", name, delivery_id, ticket.ref, reason)
        return WebhookResult(
            name,
            delivery_id,
            "classified",
            reason,
            ticket_ref=ticket.ref,
            decision_id=recorded.decision_id,
            team=decision.team,
            confidence=decision.confidence,
            abstained=decision.abstained,
            write_back=None if writeback is None else ("dry-run" if mode == "dry-run" else "pending"),
            writeback_id=None if writeback is None else writeback.id,
            label=wanted,
            rule=decision.rule,
            question=None if question is None else question.text,
        )
