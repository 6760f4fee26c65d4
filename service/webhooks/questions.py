"""A question instead of a guess: ask the reporter once, then route with the answer.

With ``TICKET_ROUTER_ASK_QUESTIONS`` on, a webhook decision that abstains, or whose top two
teams are within ``TICKET_ROUTER_TIE_MARGIN``, gets the triage label and one comment asking which
of the two teams' responsibilities fits (``model/questions.py`` writes it). The question is
stored before the delivery is answered and its primary key is the ticket: at most one question
per ticket, ever, across restarts and replicas. The next comment (or edit) on the ticket is the
answer: the ticket is decided again with it, and routed if it is now clear.
"""

from __future__ import annotations

import logging
import time

import anyio

from model.decision import Decision
from model.questions import QUESTION_HEAD, Question, ask_question, candidates
from model.text import compose
from service.decisions import Recorded
from service.store import QuestionRecord
from service.trackers.base import Answer, Interpreted, Ticket, Tracker
from service.webhooks.desk import DeliveryDesk, effective_mode
from service.webhooks.labels import wanted_label
from service.webhooks.schemas import WebhookResult

__all__ = ["QuestionDesk"]

log = logging.getLogger("ticket_router.webhooks")


class QuestionDesk(DeliveryDesk):
    """Asking questions and reading their answers."""

    def _question_for(self, decision: Decision, ticket: Ticket) -> Question | None:
        """The question to ask about ``decision`` on ``ticket``, if questions are on and it is not clear."""
        if not self.settings.ask_questions:
            return None
        pair = candidates(decision, self.settings.tie_margin)
        if pair is None:
            return None
        text = compose(ticket.title, ticket.body)
        classifier = self.holder.classifier
        return ask_question(classifier.proba_many, self.holder.taxonomy, pair, self.settings.triage_label, text)

    async def _ask(self, tracker: str, ticket_ref: str, decision_id: str, question: Question) -> bool:
        """Store the question; False when this ticket was asked one before (here or on another replica)."""
        record = QuestionRecord(ticket_ref, tracker, time.time(), decision_id, list(question.teams), question.text)
        return await anyio.to_thread.run_sync(self.store.questions.ask, record)

    async def _answer(
        self, tracker: Tracker, delivery_id: str, interpreted: Interpreted, answer: Answer
    ) -> WebhookResult:
        """A comment: if our question on the ticket is waiting, decide the ticket again with it."""
        name, ticket = tracker.name, answer.ticket
        question = await anyio.to_thread.run_sync(self.store.questions.get, ticket.ref)
        if question is None or question.status != "asked":
            reason = "a comment, and no question of ours is waiting for an answer on this ticket"
            return await self._ignore(name, delivery_id, interpreted, reason)
        if answer.text.strip().startswith(QUESTION_HEAD) or not answer.text.strip():
            return await self._ignore(name, delivery_id, interpreted, "our own question (or an empty comment)")
        ours = await anyio.to_thread.run_sync(self.store.outbox.our_labels, name, ticket.ref)
        taxonomy = self.holder.taxonomy
        human = [
            label for label in ticket.labels if taxonomy.team_for_label(name, label) and label.casefold() not in ours
        ]
        if human:
            reason = f"a comment, but a person already set team label {human[0]!r}: people's labels win"
            return await self._ignore(name, delivery_id, interpreted, reason)
        body = f"{ticket.body or ''}\n\n{answer.text}".strip()
        recorded = await self._decide(name, delivery_id, ticket, body)
        if recorded is None:
            return await self._raced(name, delivery_id)
        return await self._answered(tracker, delivery_id, interpreted, ticket, recorded, question, answer.actor)

    async def _answered(
        self,
        tracker: Tracker,
        delivery_id: str,
        interpreted: Interpreted,
        ticket: Ticket,
        recorded: Recorded,
        question: QuestionRecord,
        actor: str,
    ) -> WebhookResult:
        """Route with the decision made from the answer if it is clear now; else the ticket stays in triage."""
        name, decision = tracker.name, recorded.decision
        clear = (
            not decision.abstained and not decision.skipped and candidates(decision, self.settings.tie_margin) is None
        )
        wanted = wanted_label(self.holder.taxonomy, name, decision.team, not clear, self.settings.triage_label)
        if clear:
            outcome = f"routed to {decision.team} at {decision.confidence:.2f}"
        else:
            outcome = f"still unclear (best {decision.team} at {decision.confidence:.2f}): stays in triage"
        await anyio.to_thread.run_sync(
            lambda: self.store.questions.answer(ticket.ref, time.time(), recorded.decision_id, outcome)
        )
        ours = await anyio.to_thread.run_sync(self.store.outbox.our_labels, name, ticket.ref)
        plan = self._plan(name, ticket, wanted, ours)
        mode = effective_mode(self.settings, tracker)
        writeback = None
        if not plan.empty:
            comment = self._decision_comment(name, recorded, wanted) if mode == "label+comment" else None
            writeback = self._writeback(tracker, ticket.ref, recorded.decision_id, wanted, plan, comment)
        between = " or ".join(question.teams)
        written = "nothing to write" if writeback is None else f"{wanted} ({writeback.status})"
        reason = f"{actor or 'someone'} answered our question ({between}): {outcome}; {written}"
        delivery = self._delivery(name, delivery_id, interpreted, "answered", reason, recorded.decision_id)
        if not await anyio.to_thread.run_sync(lambda: self.store.outbox.record_delivery(delivery, writeback)):
            return await self._raced(name, delivery_id)
        log.info("%s delivery %s for %s: %s", name, delivery_id, ticket.ref, reason)
        return WebhookResult(
            name,
            delivery_id,
            "answered",
            reason,
            ticket_ref=ticket.ref,
            decision_id=recorded.decision_id,
            team=decision.team,
            confidence=decision.confidence,
            abstained=not clear,
            write_back=None if writeback is None else ("dry-run" if writeback.status == "dry-run" else "pending"),
            writeback_id=None if writeback is None else writeback.id,
            label=wanted,
        )
