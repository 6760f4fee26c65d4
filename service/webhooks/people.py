"""What people do to a ticket after we decided it: relabel it (a correction) or close it with a team.

Both are the ticket's human team: a correction is stored for training, and either is stored as
the outcome of our decision, which is what production precision is measured against
(``GET /v1/quality``).
"""

from __future__ import annotations

import logging
import time

import anyio

from model.text import compose, text_sha256
from service.store import CorrectionRecord, DecisionRecord, OutcomeRecord, new_id
from service.trackers.base import Closed, Interpreted, Relabel, Ticket, Tracker
from service.webhooks.desk import DeliveryDesk
from service.webhooks.schemas import WebhookResult

__all__ = ["PeopleDesk"]

log = logging.getLogger("ticket_router.webhooks")


class PeopleDesk(DeliveryDesk):
    """Relabels and closings: corrections and human outcomes."""

    async def _record_outcome(self, decision: DecisionRecord, team: str, source: str) -> None:
        record = OutcomeRecord(decision.id, time.time(), team, source, decision.ticket_ref)
        await anyio.to_thread.run_sync(self.store.outcomes.record, record)

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
            await self._record_outcome(ours_decision, team, f"{name}:relabel")
            reason = f"{actor} set {label}, which agrees with our decision (outcome recorded)"
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
        await self._record_outcome(ours_decision, team, f"{name}:relabel")
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

    async def _closed(
        self, tracker: Tracker, delivery_id: str, interpreted: Interpreted, closed: Closed
    ) -> WebhookResult:
        """A closed ticket with one team label: that team is the outcome of our latest decision on it."""
        name = tracker.name
        ticket = closed.ticket
        taxonomy = self.holder.taxonomy
        teams = {team for label in ticket.labels if (team := taxonomy.team_for_label(name, label)) is not None}
        if len(teams) != 1:
            what = "no team label" if not teams else f"several team labels ({', '.join(sorted(teams))})"
            return await self._ignore(name, delivery_id, interpreted, f"closed with {what}: no outcome to record")
        [team] = teams
        previous = await anyio.to_thread.run_sync(lambda: self.store.audit.recent(1, ticket.ref))
        if not previous:
            return await self._ignore(
                name, delivery_id, interpreted, f"closed as {team}, but we made no decision on it"
            )
        decision = previous[0]
        verdict = "confirms" if decision.team == team and not decision.abstained else "does not confirm"
        reason = f"closed as {team}: {verdict} our decision ({'triage' if decision.abstained else decision.team})"
        delivery = self._delivery(name, delivery_id, interpreted, "outcome", reason, decision.id)
        if not await anyio.to_thread.run_sync(lambda: self.store.outbox.record_delivery(delivery)):
            return await self._raced(name, delivery_id)
        await self._record_outcome(decision, team, f"{name}:closed")
        log.info("%s delivery %s: %s", name, delivery_id, reason)
        return WebhookResult(
            name, delivery_id, "outcome", reason, ticket_ref=ticket.ref, decision_id=decision.id, team=team
        )

    async def _classify(
        self, tracker: Tracker, delivery_id: str, interpreted: Interpreted, ticket: Ticket
    ) -> WebhookResult:  # pragma: no cover - provided by Intake
        raise NotImplementedError
