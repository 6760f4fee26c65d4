"""The audit trail writer: decisions are committed in groups on one thread.

A request hands its rows over and waits until they are committed, so an answered request
is always on record; requests arriving together share one transaction (group commit), so
recording costs a queue hop rather than a transaction each.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence

from service.store import DecisionRecord, Store

__all__ = ["AuditLog"]

log = logging.getLogger("ticket_router.audit")

_Done = Callable[[BaseException | None], None]
_Item = tuple[Sequence[DecisionRecord], _Done]


class AuditLog:
    """Group-committing writer of ``DecisionRecord`` rows."""

    def __init__(self, store: Store, max_batch: int = 2000) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    async def record(self, records: Sequence[DecisionRecord]) -> None:
        """Queue rows and wait until they are committed (raises the store's error if not)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            loop.call_soon_threadsafe(_settle, future, error)

        self._queue.put((records, done))
        await future

    def record_blocking(self, records: Sequence[DecisionRecord]) -> None:
        """The same, for callers on a worker thread."""
        finished = threading.Event()
        outcome: list[BaseException | None] = []

        def done(error: BaseException | None) -> None:
            outcome.append(error)
            finished.set()

        self._queue.put((records, done))
        finished.wait()
        if outcome and outcome[0] is not None:
            raise outcome[0]

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            size = len(item[0])
            while size < self._max_batch:
                try:
                    extra = self._queue.get_nowait()
                except queue.Empty:
                    break
                if extra is None:
                    stopping = True
                    break
                batch.append(extra)
                size += len(extra[0])
            rows = [record for records, _ in batch for record in records]
            error: BaseException | None = None
            try:
                self._store.add_decisions(rows)
            except Exception as exc:  # the waiting requests get the error; the writer lives on
                log.error("audit write of %d decisions failed: %s", len(rows), exc.__class__.__name__)
                error = exc
            for _, done in batch:
                done(error)


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
