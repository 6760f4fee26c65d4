"""Training jobs: one at a time, in a separate process, off the request path.

A job is a row in the store (queued, running, then succeeded, refused by the promotion gate, or
failed). The training itself runs in a worker process, so its CPU never competes with serving for
the GIL; the worker writes its stage and progress to the row as it goes, the parent keeps the
row's heartbeat fresh, and a job whose heartbeat stops (the process died) is failed at the next
start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import anyio
import msgspec

from model.fitting import exit_with_parent
from model.training import TrainingParams
from service.metrics import TRAINING_JOBS, TRAINING_SECONDS
from service.settings import Settings
from service.store import JobRecord, Store
from service.trainer import TrainingOutcome, TrainingStep, train_version

__all__ = ["HEARTBEAT_SECONDS", "TrainingJobs", "run_training"]

log = logging.getLogger("ticket_router.jobs")

HEARTBEAT_SECONDS = 5.0


class _Result(msgspec.Struct, frozen=True):
    outcome: TrainingOutcome | None = None
    error: str | None = None


def run_training(settings: Settings, options: dict[str, Any], actor: str, job_id: str | None = None) -> _Result:
    """The job's work, in the worker process; errors come back as text (they may not pickle)."""
    try:
        params = options.get("params")
        with Store.for_settings(settings) as store:

            def progress(step: TrainingStep) -> None:
                if job_id is not None:
                    store.jobs.update(job_id, stage=step.describe(), progress=round(step.fraction, 3))

            outcome = train_version(
                settings,
                activate=bool(options.get("activate", True)),
                force=bool(options.get("force", False)),
                note=str(options.get("note", "")),
                actor=actor,
                store=store,
                params=msgspec.convert(params, TrainingParams) if params is not None else None,
                progress=progress,
            )
    except Exception as exc:
        return _Result(error=f"{exc.__class__.__name__}: {exc}")
    return _Result(outcome=outcome)


class TrainingJobs:
    """Queues training jobs and runs them in a worker process."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._executor: ProcessPoolExecutor | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def recover(self) -> int:
        """Fail jobs left queued or running by a process that stopped; returns how many."""
        count = self._store.jobs.fail_stale(time.time() - self._settings.job_stale_seconds)
        if count:
            log.warning("marked %d interrupted training job(s) as failed", count)
        return count

    async def submit(self, options: dict[str, Any], actor: str) -> JobRecord:
        """Queue a training; ``JobConflictError`` while another is queued or running."""
        record = await anyio.to_thread.run_sync(self._store.jobs.create, "train", options, actor)
        task = asyncio.create_task(self._run(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record

    async def _run(self, record: JobRecord) -> None:
        now = time.time()
        await anyio.to_thread.run_sync(
            lambda: self._store.jobs.update(
                record.id, status="running", started_at=now, heartbeat_at=now, stage="reading the training data"
            )
        )
        heartbeat = asyncio.create_task(self._beat(record.id))
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(
                self._pool(), run_training, self._settings, record.options, record.requested_by or "api", record.id
            )
        except Exception as exc:  # the worker process itself failed
            result = _Result(error=f"{exc.__class__.__name__}: {exc}")
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        finished = time.time()
        if result.outcome is not None:
            outcome = msgspec.to_builtins(result.outcome)
            status = "refused" if result.outcome.refused else "succeeded"
            update: dict[str, Any] = {"status": status, "finished_at": finished, "result": outcome, "progress": 1.0}
            update["stage"] = "done" if status == "succeeded" else "refused by the promotion gate"
            if result.outcome.refused:
                update["error"] = result.outcome.gate.reason
        else:
            update = {"status": "failed", "finished_at": finished, "error": result.error, "stage": "failed"}
        await anyio.to_thread.run_sync(lambda: self._store.jobs.update(record.id, **update))
        TRAINING_JOBS.labels(update["status"]).inc()
        if result.outcome is not None:
            TRAINING_SECONDS.observe(result.outcome.seconds)
        log.info("training job %s %s", record.id, update["status"])

    async def _beat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(min(HEARTBEAT_SECONDS, self._settings.job_stale_seconds / 4))
            await anyio.to_thread.run_sync(lambda: self._store.jobs.update(job_id, heartbeat_at=time.time()))

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn: a clean interpreter, not a fork of a process with threads and open sockets.
            # The worker ends with this process, even one killed outright (a running training is then
            # failed by the next start's recovery).
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._executor

    async def wait(self) -> None:
        """Wait for the jobs this process started (used at shutdown and in tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def close(self) -> None:
        """Stop the worker process (a running training is abandoned and failed at the next start)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
