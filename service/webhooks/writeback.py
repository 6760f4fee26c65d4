"""The write-back worker: performs stored write-backs after the webhook has been answered.

Rows are claimed with a lease (a conditional UPDATE), so several processes or replicas never
make the same write-back twice, and a crashed claimant's rows come back when its lease ends.
Each successful request is removed from the row before the next one is sent, so a retry
repeats nothing that already worked. A row that still fails is stored ``failed`` with its
error and retried on a schedule (doubling from ``writeback_retry_seconds``) until
``writeback_retry_limit`` attempts; a refusal (4xx) or the last attempt waits for an admin's
retry (``POST /v1/writebacks/retry``). Nothing is dropped.

One slow tracker cannot hold up the others: at most ``PARALLEL`` write-backs run at once, at
most ``PER_TRACKER`` of them to one tracker and ``PER_TARGET`` to one repository or project, and
rows of a busy tracker or repository are left in the database (not claimed) until it has room.
An attempt that takes longer than ``writeback_deadline_seconds`` is given up and rescheduled.
The worker claims new rows whenever one finishes or it is woken, not round by round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence

import anyio
import msgspec

from service.metrics import WRITEBACKS
from service.settings import Settings
from service.store import Store, WritebackRecord
from service.trackers.base import PlannedRequest, Tracker
from service.trackers.errors import TrackerRejectedError, TrackerUnavailableError, WriteBackError
from service.webhooks.outbound import Sender

__all__ = ["WriteBackWorker"]

log = logging.getLogger("ticket_router.writeback")

LEASE_SECONDS = 300.0
MAX_RETRY_INTERVAL = 3600.0
PARALLEL = 16
PER_TRACKER = 8
PER_TARGET = 2
PRUNE_EVERY = 3600.0

_requests_decoder = msgspec.json.Decoder(list[PlannedRequest])
_encoder = msgspec.json.Encoder()


class WriteBackWorker:
    """Runs due write-backs in the background; woken after each webhook answer, on a timer, and as rows finish."""

    def __init__(self, settings: Settings, trackers: Mapping[str, Tracker], store: Store, sender: Sender) -> None:
        self.settings = settings
        self.trackers = trackers
        self.store = store
        self.sender = sender
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: dict[str, tuple[str, str]] = {}  # row id -> (tracker, target), claimed and not finished
        self._chains: dict[str, asyncio.Task[None]] = {}  # ticket -> its latest row's task (rows run in order)
        self._pruned_at = 0.0
        self._stopping = False

    def start(self) -> None:
        """Start the background loop; rows left pending by a previous run are picked up at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="writeback-worker")

    def wake(self) -> None:
        """Look for due write-backs now."""
        self._wake.set()

    async def stop(self, grace: float = 5.0) -> None:
        """Let in-flight write-backs finish for up to ``grace`` seconds, then stop and release claims."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        running = set(self._chains.values())
        _, pending = await asyncio.wait({task, *running}, timeout=grace)
        for unfinished in pending:
            unfinished.cancel()
        for unfinished in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await unfinished
        # Rows interrupted mid-way go back to the queue now rather than when their lease ends.
        claimed, self._running = list(self._running), {}
        await anyio.to_thread.run_sync(self.store.outbox.release_writebacks, claimed)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.dispatch()
                await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the worker alive; the rows stay stored and come back
                log.exception("write-back round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.writeback_poll_seconds)

    async def dispatch(self) -> list[str]:
        """Claim the due write-backs there is room for, start them, and return their ids (without waiting)."""
        room = PARALLEL - len(self._running)
        if room <= 0 or self._stopping:
            return []
        targets = Counter(target for _, target in self._running.values())
        per_tracker = Counter(tracker for tracker, _ in self._running.values())
        full_targets = [target for target, n in targets.items() if n >= PER_TARGET]
        full_trackers = [tracker for tracker, n in per_tracker.items() if n >= PER_TRACKER]

        def admit(tracker: str, ticket_ref: str) -> bool:  # runs in the claiming thread, on copies
            target = self._target(tracker, ticket_ref)
            if targets[target] >= PER_TARGET or per_tracker[tracker] >= PER_TRACKER:
                return False
            targets[target] += 1
            per_tracker[tracker] += 1
            return True

        rows = await anyio.to_thread.run_sync(
            lambda: self.store.outbox.claim_writebacks(
                time.time(),
                LEASE_SECONDS,
                room,
                skip_trackers=full_trackers,
                skip_prefixes=full_targets,
                admit=admit,
            )
        )
        for row in rows:
            self._running[row.id] = (row.tracker, self._target(row.tracker, row.ticket_ref))
            previous = self._chains.get(row.ticket_ref)
            task = asyncio.create_task(self._run_after(previous, row), name=f"writeback-{row.id}")
            self._chains[row.ticket_ref] = task
        return [row.id for row in rows]

    def _target(self, tracker: str, ticket_ref: str) -> str:
        known = self.trackers.get(tracker)
        return known.target(ticket_ref) if known is not None else tracker

    async def _run_after(self, previous: asyncio.Task[None] | None, row: WritebackRecord) -> None:
        """Perform ``row`` once the ticket's previous write-back is done (a relabel follows the first label)."""
        try:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(previous)
            await self._perform(row)
        finally:
            self._running.pop(row.id, None)
            if self._chains.get(row.ticket_ref) is asyncio.current_task():
                del self._chains[row.ticket_ref]
            self.wake()  # there is room for another row

    async def retry(self, ids: Sequence[str] | None = None) -> tuple[int, list[WritebackRecord]]:
        """An admin's retry: make failed write-backs (all, or ``ids``) due now and wake the worker.

        Answers at once, with how many were scheduled and their state as scheduled: a hanging
        tracker never holds the admin's request (the worker's bounded, per-target sending does the
        work, and ``GET /v1/writebacks`` shows how it went).
        """
        outbox = self.store.outbox
        chosen = await anyio.to_thread.run_sync(lambda: outbox.retry_writebacks(time.time(), ids))
        # Read them as scheduled before waking the worker, so the answer never races the sending.
        rows = await anyio.to_thread.run_sync(lambda: [outbox.get_writeback(i) for i in chosen])
        if chosen:
            self.wake()
        return len(chosen), [row for row in rows if row is not None]

    async def _perform(self, row: WritebackRecord) -> None:
        attempts = row.attempts + 1
        deadline = self.settings.writeback_deadline_seconds
        try:
            try:
                async with asyncio.timeout(deadline):
                    await self._send_all(row)
            except TimeoutError:
                raise TrackerUnavailableError(
                    f"gave up after {deadline:g} s (the tracker did not answer in time)"
                ) from None
        except asyncio.CancelledError:
            raise
        except WriteBackError as exc:
            retry = not isinstance(exc, TrackerRejectedError)
            await self._failed(row, attempts, str(exc), exc.retry_after, retry)
        except Exception as exc:
            log.exception("write-back %s failed unexpectedly", row.id)
            await self._failed(row, attempts, f"{exc.__class__.__name__}: {exc}", None, retry=True)
        else:
            await anyio.to_thread.run_sync(lambda: self.store.outbox.finish_writeback(row.id, "done", attempts))
            WRITEBACKS.labels(row.tracker, "ok").inc()
            log.info("write-back %s to %s done", row.id, row.ticket_ref)

    async def _send_all(self, row: WritebackRecord) -> None:
        tracker = self.trackers.get(row.tracker)
        headers = tracker.auth_headers() if tracker is not None else None
        if headers is None:
            raise TrackerRejectedError(f"no {row.tracker} credentials are configured for write-back")
        remaining = list(_requests_decoder.decode(row.request))
        # An earlier attempt may have applied a request whose answer never came: look before re-sending.
        resend = row.attempts > 0
        while remaining:
            await self.sender.send(remaining[0], headers, row.tracker, resend=resend)
            remaining.pop(0)
            if remaining:
                left = _encoder.encode(remaining).decode()
                await anyio.to_thread.run_sync(self.store.outbox.writeback_progress, row.id, left)

    async def _failed(self, row: WritebackRecord, attempts: int, error: str, hint: float | None, retry: bool) -> None:
        next_at: float | None = None
        if retry and attempts < self.settings.writeback_retry_limit:
            interval = min(MAX_RETRY_INTERVAL, self.settings.writeback_retry_seconds * 2 ** (attempts - 1))
            next_at = time.time() + max(interval, hint or 0.0)
        log.warning(
            "write-back %s to %s failed (attempt %d, %s): %s",
            row.id,
            row.ticket_ref,
            attempts,
            "retrying later" if next_at else "waiting for an admin retry",
            error,
        )
        await anyio.to_thread.run_sync(
            lambda: self.store.outbox.finish_writeback(row.id, "failed", attempts, error, next_at)
        )
        WRITEBACKS.labels(row.tracker, "failed").inc()

    async def _prune(self) -> None:
        now = time.time()
        if now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now
        cutoff = now - self.settings.webhook_retention_days * 86400
        removed = await anyio.to_thread.run_sync(self.store.outbox.prune_deliveries, cutoff)
        if removed:
            log.info("forgot %d webhook deliveries older than %d days", removed, self.settings.webhook_retention_days)
