"""Decisions are made in micro-batches on one worker thread and recorded on another.

Requests queue their tickets and wait. The decision thread takes everything waiting and
classifies it in one vectorised pass with the active model; the commit thread writes the
batch's audit rows in one transaction and then wakes every waiting request with a single
call into its event loop. So decisions stay off the event loop, an answered request is always
on record, the costs of the thread hop and the commit are shared by the requests that arrived
together, and the next batch is decided while the previous one commits.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from model.decision import Decision
from model.inference import Classifier, TicketInput
from model.rules import RuleFacts, RuleSet
from model.text import compose, text_sha256
from service.metrics import count_decisions
from service.serving import ModelHolder
from service.store import DecisionRecord, ShadowRecord, Store, TriageRecord, new_id
from service.triage import triage_of

__all__ = ["DecisionWorker", "Recorded", "Ticket", "record_of"]

log = logging.getLogger("ticket_router.decisions")

# (item id, title, body) or (item id, title, body, repository)
Ticket = TicketInput


@dataclass(frozen=True, slots=True)
class Recorded:
    """A decision with the id of its audit row."""

    decision_id: str
    decision: Decision


@dataclass(slots=True)
class _Job:
    """Tickets from one caller, answered through its event loop's future."""

    tickets: Sequence[Ticket]
    source: str
    refs: Sequence[str | None] | None
    links: Sequence[str | None] | None = None
    facts: Sequence[RuleFacts | None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[list[Recorded]] | None = None
    results: list[Recorded] = field(default_factory=list)
    records: list[DecisionRecord] = field(default_factory=list)
    triage: list[TriageRecord] = field(default_factory=list)
    error: BaseException | None = None


class DecisionWorker:
    """The one thread that classifies and records tickets for the service."""

    def __init__(
        self,
        holder: ModelHolder,
        store: Store,
        max_batch: int = 256,
        triage_margin: float = 0.0,
        rules: RuleSet | None = None,
    ) -> None:
        self._holder = holder
        self._store = store
        self.rules = rules or RuleSet()
        self._max_batch = max_batch
        self._triage_margin = triage_margin
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._commits: queue.SimpleQueue[_Commit | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Start the decision and commit threads."""
        if not self._threads:
            self._threads = [
                threading.Thread(target=self._run, name="decision-worker", daemon=True),
                threading.Thread(target=self._commit, name="decision-commit", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def stop(self) -> None:
        """Decide and commit what is queued, then stop."""
        if self._threads:
            self._queue.put(None)
            self._threads[0].join()
            self._commits.put(None)
            self._threads[1].join()
            self._threads = []

    async def decide(
        self,
        tickets: Sequence[Ticket],
        source: str,
        refs: Sequence[str | None] | None = None,
        links: Sequence[str | None] | None = None,
        facts: Sequence[RuleFacts | None] | None = None,
    ) -> list[Recorded]:
        """Classify and record ``tickets``; returns once their audit rows are committed.

        ``refs`` name the tickets in their tracker and ``links`` are their web pages, when known.
        The routing rules see each ticket's ``facts`` (where it comes from), or its title alone.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Recorded]] = loop.create_future()
        self._queue.put(_Job(tickets, source, refs, links, facts, loop=loop, future=future))
        return await future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._queue.get()
            if job is None:
                break
            jobs = [job]
            size = len(job.tickets)
            while size < self._max_batch:
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    stopping = True
                    break
                jobs.append(extra)
                size += len(extra.tickets)
            self._process(jobs)

    def _process(self, jobs: list[_Job]) -> None:
        try:
            commit = self._decide(jobs)
        except Exception as exc:  # every waiting caller gets the error; the worker lives on
            for job in jobs:
                job.error = exc
            _deliver(jobs)
            return
        self._commits.put(commit)

    def _decide(self, jobs: list[_Job]) -> _Commit:
        classifier = self._holder.classifier  # one version for the whole batch
        shadow = self._holder.shadow
        tickets = [ticket for job in jobs for ticket in job.tickets]
        decisions = classifier.decide_many(tickets)
        records: list[DecisionRecord] = []
        triage: list[TriageRecord] = []
        margin = self._triage_margin
        now = time.time()
        position = 0
        rules = self.rules
        for job in jobs:
            refs = job.refs or [None] * len(job.tickets)
            links = job.links or [None] * len(job.tickets)
            facts = job.facts or [None] * len(job.tickets)
            for ticket, ref, link, fact in zip(job.tickets, refs, links, facts, strict=True):
                title, body = ticket[1], ticket[2]
                decision = decisions[position]
                position += 1
                if len(rules):
                    decision = rules.apply(decision, fact or RuleFacts(title=title))
                record = record_of(decision, job.source, compose(title, body), ref, now)
                records.append(record)
                job.records.append(record)
                job.results.append(Recorded(record.id, decision))
                row = triage_of(record.id, decision, job.source, title, body, margin, now, ref, link)
                if row is not None:
                    triage.append(row)
                    job.triage.append(row)
        return _Commit(jobs, records, triage, self._shadow_records(shadow, tickets, records, now))

    @staticmethod
    def _shadow_records(
        shadow: Classifier | None, tickets: list[Ticket], records: list[DecisionRecord], now: float
    ) -> list[ShadowRecord]:
        """What the shadowed candidate decides for the same tickets; its failure never fails a request."""
        if shadow is None:
            return []
        try:
            decisions = shadow.decide_many(tickets)
        except Exception:
            log.exception("shadow model %s failed; its decisions are skipped", shadow.version)
            return []
        return [
            ShadowRecord(r.id, shadow.version, now, d.team, d.confidence, d.abstained)
            for r, d in zip(records, decisions, strict=True)
        ]

    def _commit(self) -> None:
        while True:
            item = self._commits.get()
            if item is None:
                return
            # Commit everything decided meanwhile in the same transaction.
            while True:
                try:
                    extra = self._commits.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    self._commits.put(None)
                    break
                item.extend(extra)
            self._commit_batch(item)
            _deliver(item.jobs)

    def _commit_batch(self, item: _Commit) -> None:
        """Commit a batch's audit rows; when that fails, each caller's rows alone, so one bad row fails one caller."""
        try:
            self._store.audit.add(item.records, item.triage)
        except Exception as exc:
            if len(item.jobs) == 1:
                item.jobs[0].error = exc
                return
            log.warning(
                "a batch of %d decisions failed to commit (%s); committing each request alone", len(item.records), exc
            )
            for job in item.jobs:
                try:
                    self._store.audit.add(job.records, job.triage)
                except Exception as alone:
                    job.error = alone
        committed = {record.id for job in item.jobs if job.error is None for record in job.records}
        self._record_shadow([record for record in item.shadow if record.decision_id in committed])
        for job in item.jobs:
            if job.error is None:
                count_decisions((result.decision for result in job.results), job.source)

    def _record_shadow(self, records: list[ShadowRecord]) -> None:
        if not records:
            return
        try:
            self._store.audit.add_shadow(records)
        except Exception:
            log.exception("could not record %d shadow decisions", len(records))


@dataclass(slots=True)
class _Commit:
    """Decided jobs waiting for their audit rows (and shadow rows) to be committed."""

    jobs: list[_Job]
    records: list[DecisionRecord]
    triage: list[TriageRecord]
    shadow: list[ShadowRecord]

    def extend(self, other: _Commit) -> None:
        self.jobs += other.jobs
        self.records += other.records
        self.triage += other.triage
        self.shadow += other.shadow


def _deliver(jobs: list[_Job]) -> None:
    """Answer every job: one call into each event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in jobs:
        if job.loop is not None:
            by_loop.setdefault(job.loop, []).append(job)
    for loop, waiting in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, waiting)
        except RuntimeError:  # the loop has closed: nobody is waiting any more
            log.debug("event loop closed before %d decisions were delivered", len(waiting))


def record_of(
    decision: Decision, source: str, text: str, ticket_ref: str | None = None, now: float | None = None
) -> DecisionRecord:
    """The audit row of a decision: a hash of the text, never the text."""
    return DecisionRecord(
        id=new_id(),
        created_at=time.time() if now is None else now,
        source=source,
        ticket_ref=ticket_ref,
        text_sha256=text_sha256(text),
        team=decision.team,
        confidence=decision.confidence,
        abstained=decision.abstained,
        model_version=decision.model_version,
        scores=decision.scores,
        rule=decision.rule,
        skipped=decision.skipped,
    )


def _settle(jobs: list[_Job]) -> None:
    for job in jobs:
        future = job.future
        if future is None or future.done():
            continue
        if job.error is not None:
            future.set_exception(job.error)
        else:
            future.set_result(job.results)
