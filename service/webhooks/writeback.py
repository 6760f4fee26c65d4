"""The write-back worker: performs stored write-backs after the webhook has been answered.

Rows are claimed with a lease (a conditional UPDATE), so several processes or replicas never
make the same write-back twice, and a crashed claimant's rows come back when its lease ends.
Each successful request is removed from the row before the next one is sent, so a retry
repeats nothing that already worked. A row that still fails is stored ``failed`` with its
error and retried on a schedule (doubling from ``writeback_retry_seconds``) until
``writeback_retry_limit`` attempts; a refusal (4xx) or the last attempt waits for an admin's
retry (``POST /v1/writebacks/retry``). Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence

import anyio
import msgspec

from service.metrics import WRITEBACKS
from service.settings import Settings
from service.store import Store, WritebackRecord
from service.trackers.base import PlannedRequest, Tracker
from service.trackers.errors import TrackerRejectedError, WriteBackError
from service.webhooks.outbound import Sender

__all__ = ["WriteBackWorker"]

log = logging.getLogger("ticket_router.writeback")

LEASE_SECONDS = 300.0
MAX_RETRY_INTERVAL = 3600.0
BATCH = 50
PARALLEL_TICKETS = 4
PRUNE_EVERY = 3600.0

_requests_decoder = msgspec.json.Decoder(list[PlannedRequest])
_encoder = msgspec.json.Encoder()


class WriteBackWorker:
    """Runs due write-backs in the background; woken after each webhook answer and on a timer."""

    def __init__(self, settings: Settings, trackers: Mapping[str, Tracker], store: Store, sender: Sender) -> None:
        self.settings = settings
        self.trackers = trackers
        self.store = store
        self.sender = sender
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._claimed: set[str] = set()
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
        done, _ = await asyncio.wait({task}, timeout=grace)
        if not done:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Rows interrupted mid-way go back to the queue now rather than when their lease ends.
        claimed, self._claimed = list(self._claimed), set()
        await anyio.to_thread.run_sync(self.store.outbox.release_writebacks, claimed)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.run_due()
                await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the worker alive; the rows stay stored and come back
                log.exception("write-back round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.writeback_poll_seconds)

    async def run_due(self, ids: Sequence[str] | None = None) -> list[WritebackRecord]:
        """Claim due write-backs (all, or those in ``ids``) and perform them; returns their new state."""
        rows = await anyio.to_thread.run_sync(
            lambda: self.store.outbox.claim_writebacks(time.time(), LEASE_SECONDS, BATCH, ids)
        )
        if not rows:
            return []
        self._claimed.update(row.id for row in rows)
        # One ticket's write-backs in order (a later relabel must follow the first label);
        # different tickets in parallel, a few at a time.
        by_ticket: dict[str, list[WritebackRecord]] = {}
        for row in rows:
            by_ticket.setdefault(row.ticket_ref, []).append(row)
        limiter = asyncio.Semaphore(PARALLEL_TICKETS)

        async def run_ticket(chain: list[WritebackRecord]) -> None:
            async with limiter:
                for row in chain:
                    await self._perform(row)

        await asyncio.gather(*(run_ticket(chain) for chain in by_ticket.values()))
        found = [await anyio.to_thread.run_sync(self.store.outbox.get_writeback, row.id) for row in rows]
        return [row for row in found if row is not None]

    async def retry(self, ids: Sequence[str] | None = None) -> tuple[int, list[WritebackRecord]]:
        """An admin's retry: make failed write-backs (all, or ``ids``) due and perform them now.

        Returns how many were retried and the new state of each (including any the background
        loop happened to claim first).
        """
        outbox = self.store.outbox
        chosen = await anyio.to_thread.run_sync(lambda: outbox.retry_writebacks(time.time(), ids))
        if chosen:
            await self.run_due(chosen)
        rows = await anyio.to_thread.run_sync(lambda: [outbox.get_writeback(i) for i in chosen])
        return len(chosen), [row for row in rows if row is not None]

    async def _perform(self, row: WritebackRecord) -> None:
        attempts = row.attempts + 1
        try:
            await self._send_all(row)
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
        self._claimed.discard(row.id)

    async def _send_all(self, row: WritebackRecord) -> None:
        tracker = self.trackers.get(row.tracker)
        headers = tracker.auth_headers() if tracker is not None else None
        if headers is None:
            raise TrackerRejectedError(f"no {row.tracker} credentials are configured for write-back")
        remaining = list(_requests_decoder.decode(row.request))
        while remaining:
            await self.sender.send(remaining[0], headers, row.tracker)
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
