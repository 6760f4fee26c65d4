"""Training jobs: one at a time, in a separate process, off the request path.

A job is a row in the store (queued, running, then succeeded, refused by the promotion gate, or
failed). The training itself runs in a process of its own (``service/training_worker.py``),
started for the job and ended with it, so its CPU never competes with serving for the GIL and its
memory is returned when it is done; it also ends when the server worker that started it dies. The
training process writes its stage and progress to the row as it goes, the parent keeps the row's
heartbeat fresh, and a job whose heartbeat stops (the process died) is failed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import sys
import time
from typing import Any

import anyio
import msgspec

from model.training import TrainingParams
from service.metrics import TRAINING_JOBS, TRAINING_SECONDS
from service.settings import Settings
from service.store import JobRecord, Store
from service.trainer import TrainingOutcome, TrainingStep, train_version

__all__ = ["HEARTBEAT_SECONDS", "TrainingJobs", "TrainingResult", "run_training"]

log = logging.getLogger("ticket_router.jobs")

HEARTBEAT_SECONDS = 5.0


class TrainingResult(msgspec.Struct, frozen=True):
    """What a training process sends back: the outcome, or the error as text."""

    outcome: TrainingOutcome | None = None
    error: str | None = None


def run_training(settings: Settings, options: dict[str, Any], actor: str, job_id: str | None = None) -> TrainingResult:
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
        return TrainingResult(error=f"{exc.__class__.__name__}: {exc}")
    return TrainingResult(outcome=outcome)


class TrainingJobs:
    """Queues training jobs and runs them in a worker process."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._tasks: set[asyncio.Task[None]] = set()
        self._processes: set[asyncio.subprocess.Process] = set()

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
            result = await self._train(record.options, record.requested_by or "api", record.id)
        except Exception as exc:  # the training process could not be started
            result = TrainingResult(error=f"{exc.__class__.__name__}: {exc}")
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

    async def _train(self, options: dict[str, Any], actor: str, job_id: str) -> TrainingResult:
        """Run one training in a new process (a clean interpreter, not a fork of this threaded one)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.training_worker",
            str(os.getpid()),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._processes.add(process)
        try:
            output, _ = await process.communicate(pickle.dumps((self._settings, options, actor, job_id)))
        finally:
            self._processes.discard(process)
        if process.returncode != 0 or not output:
            return TrainingResult(error=f"the training process stopped (exit code {process.returncode})")
        return msgspec.msgpack.decode(output, type=TrainingResult)

    async def wait(self) -> None:
        """Wait for the jobs this process started (used at shutdown and in tests)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Stop any training process; its job is recorded as failed."""
        for process in list(self._processes):
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await self.wait()
