"""One delivery from raw bytes to a stored outcome: verify, de-duplicate, decide, persist, answer.

Everything the answer promises is committed before the answer: the decision (in the audit
trail, by the decision worker), the delivery (its primary key is the de-duplication) and, when
labels are due, the write-back row with the exact requests. The requests themselves are sent
later by the write-back worker.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping

import anyio
import msgspec

from model.text import compose, text_sha256
from service.config import PREFIX, WriteBackMode
from service.decisions import DecisionWorker
from service.serving import ModelHolder
from service.settings import Settings
from service.store import CorrectionRecord, DeliveryRecord, Store, WritebackRecord, new_id
from service.trackers.base import Classify, Interpreted, Relabel, Ticket, Tracker
from service.trackers.errors import TrackerDisabledError
from service.webhooks.comments import comment_text
from service.webhooks.schemas import WebhookResult

__all__ = ["Intake", "delivery_id_of", "effective_mode"]

log = logging.getLogger("ticket_router.webhooks")

_MAX_ID = 200  # the delivery_id column's width


def delivery_id_of(tracker: Tracker, headers: Mapping[str, str], body: bytes) -> str:
    """The delivery's id from its tracker's header; without one, a digest of the body (equal on a resend)."""
    for name in tracker.delivery_headers:
        value = (headers.get(name) or "").strip()
        if value and len(value) <= _MAX_ID:
            return value
    return "sha256:" + hashlib.sha256(body).hexdigest()


def effective_mode(settings: Settings, tracker: Tracker) -> WriteBackMode:
    """The write-back mode in force: ``dry-run`` for an insecure development tracker without credentials."""
    mode = settings.write_back_for(tracker.name)
    if mode != "dry-run" and tracker.auth_headers() is None:
        return "dry-run"
    return mode


# A claim on a delivery older than this belonged to a process that died; a redelivery may take it over.
CLAIM_STALE_SECONDS = 60.0


class Intake:
    """Receives deliveries for every registered tracker."""

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
        verdict = interpreted.verdict
        if isinstance(verdict, Relabel):
            return await self._relabel(tracker, delivery_id, interpreted, verdict)
        if isinstance(verdict, Classify):
            return await self._classify(tracker, delivery_id, interpreted, verdict.ticket)
        return await self._ignore(name, delivery_id, interpreted, verdict.reason)

    # -- outcomes ---------------------------------------------------------------------------

    async def _ignore(
        self, tracker: str, delivery_id: str, interpreted: Interpreted, reason: str, supersede: bool = False
    ) -> WebhookResult:
        delivery = self._delivery(tracker, delivery_id, interpreted, "ignored", reason)
        ref = interpreted.ticket_ref if supersede else None
        if not await anyio.to_thread.run_sync(lambda: self.store.outbox.record_delivery(delivery, supersede=ref)):
            return await self._raced(tracker, delivery_id)
        log.info("%s delivery %s ignored: %s", tracker, delivery_id, reason)
        return WebhookResult(tracker, delivery_id, "ignored", reason, ticket_ref=interpreted.ticket_ref)

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

        # Claim the delivery before deciding, so that a redelivery reaching another replica at the
        # same moment does not classify it too; give the claim back if deciding fails.
        if not await anyio.to_thread.run_sync(outbox.claim_delivery, name, delivery_id, CLAIM_STALE_SECONDS):
            return await self._raced(name, delivery_id)
        try:
            decide = [(None, ticket.title, ticket.body, ticket.repository)]
            [recorded] = await self.decisions.decide(decide, name, [ticket.ref])
        except BaseException:
            await anyio.to_thread.run_sync(outbox.release_delivery, name, delivery_id)
            raise
        decision = recorded.decision
        team = taxonomy.get(decision.team)
        wanted = self.settings.triage_label if decision.abstained or team is None else team.label_for(name)
        present = {label.casefold() for label in ticket.labels}
        add = None if wanted.casefold() in present else wanted
        # Only labels we set ourselves are ever taken away (our earlier team, or triage).
        remove = [
            label
            for label in ticket.labels
            if label.casefold() in ours
            and label.casefold() != wanted.casefold()
            and (taxonomy.team_for_label(name, label) or label.casefold() == self.settings.triage_label.casefold())
        ]
        routed = (
            f"abstained (best {decision.team} at {decision.confidence:.2f}): {wanted}"
            if decision.abstained
            else f"routed to {decision.team} at {decision.confidence:.2f}: {wanted}"
        )
        mode = effective_mode(self.settings, tracker)
        writeback: WritebackRecord | None = None
        if add is None and not remove:
            reason = f"{routed}; the ticket already carries it, nothing to write"
        else:
            comment = None
            if mode == "label+comment":
                labels = {t.id: t.label_for(name) for t in taxonomy.teams}
                names = {t.id: t.name for t in taxonomy.teams}
                comment = comment_text(decision, wanted, recorded.decision_id, labels, names)
            requests = tracker.label_requests(ticket.ref, add, remove)
            if comment is not None:
                requests.append(tracker.comment_request(ticket.ref, comment))
            now = time.time()
            writeback = WritebackRecord(
                id=new_id(),
                created_at=now,
                updated_at=now,
                tracker=name,
                ticket_ref=ticket.ref,
                decision_id=recorded.decision_id,
                label=wanted,
                comment=comment,
                request=msgspec.json.encode(requests).decode(),
                status="dry-run" if mode == "dry-run" else "pending",
                next_attempt_at=None if mode == "dry-run" else now,
            )
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
        )

    async def _relabel(
        self, tracker: Tracker, delivery_id: str, interpreted: Interpreted, relabel: Relabel
    ) -> WebhookResult:
        name = tracker.name
        taxonomy = self.holder.taxonomy
        ticket = relabel.ticket
        added_teams = {
            team: label for label in relabel.added if (team := taxonomy.team_for_label(name, label)) is not None
        }
        if not added_teams:
            if relabel.text_changed:
                return await self._classify(tracker, delivery_id, interpreted, ticket)
            return await self._ignore(name, delivery_id, interpreted, "labels changed, but no team label was added")
        ours = await anyio.to_thread.run_sync(self.store.outbox.our_labels, name, ticket.ref)
        if all(label.casefold() in ours for label in added_teams.values()):
            return await self._ignore(name, delivery_id, interpreted, "our own label event")
        if len(added_teams) > 1:
            reason = f"several team labels added at once ({', '.join(sorted(added_teams.values()))}): not a clear team"
            return await self._ignore(name, delivery_id, interpreted, reason, supersede=True)
        [(team, label)] = added_teams.items()
        actor = relabel.actor or "someone"
        previous = await anyio.to_thread.run_sync(lambda: self.store.audit.recent(1, ticket.ref))
        if not previous:
            reason = f"{actor} set {label}, but we made no decision for this ticket"
            return await self._ignore(name, delivery_id, interpreted, reason)
        ours_decision = previous[0]
        if ours_decision.team == team and not ours_decision.abstained:
            reason = f"{actor} set {label}, which agrees with our decision"
            return await self._ignore(name, delivery_id, interpreted, reason)
        text = compose(ticket.title, ticket.body)
        correction = CorrectionRecord(
            id=new_id(),
            created_at=time.time(),
            source=name,
            team=team,
            title=ticket.title or "",
            body=ticket.body or "",
            text_sha256=text_sha256(text),
            actor=relabel.actor or None,
            previous_team=ours_decision.team,
            decision_id=ours_decision.id,
            ticket_ref=ticket.ref,
        )
        was = "triage" if ours_decision.abstained else ours_decision.team
        reason = f"{actor} relabelled the ticket from {was} to {team} ({label}): stored as a correction"
        delivery = self._delivery(name, delivery_id, interpreted, "correction", reason, ours_decision.id)
        stored = await anyio.to_thread.run_sync(
            lambda: self.store.outbox.record_delivery(delivery, correction=correction, supersede=ticket.ref)
        )
        if not stored:
            return await self._raced(name, delivery_id)
        log.info("%s delivery %s: %s", name, delivery_id, reason)
        return WebhookResult(
            name,
            delivery_id,
            "correction",
            reason,
            ticket_ref=ticket.ref,
            decision_id=ours_decision.id,
            team=team,
            correction_id=correction.id,
        )

    # -- helpers ----------------------------------------------------------------------------

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
