"""Training jobs: queued, running, succeeded, refused or failed; one active at a time across replicas."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import JobRecord, new_id
from service.store.schema import jobs

__all__ = ["FINISHED", "JobConflictError", "Jobs"]

# A job in one of these states is over and frees the training slot.
FINISHED = ("succeeded", "refused", "failed")


class JobConflictError(Exception):
    """Raised when a training is requested while another is queued or running."""


class Jobs:
    """The jobs table; a unique slot column lets only one job be queued or running."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, kind: str, options: dict[str, Any], requested_by: str | None) -> JobRecord:
        """Queue a job; ``JobConflictError`` while another one is queued or running."""
        record = JobRecord(
            id=new_id(), kind=kind, status="queued", created_at=time.time(), options=options, requested_by=requested_by
        )
        row = msgspec.structs.asdict(record)
        row["options"] = msgspec.json.encode(options).decode()
        row["active_slot"] = 1
        try:
            with self.db.write() as conn:
                conn.execute(jobs.insert().values(**row))
        except sa.exc.IntegrityError:
            raise JobConflictError("a training is already queued or running") from None
        return record

    def update(self, job_id: str, **values: Any) -> None:
        """Change a job's status, timestamps, result or error."""
        if "result" in values and values["result"] is not None:
            values["result"] = msgspec.json.encode(values["result"]).decode()
        if values.get("status") in FINISHED:
            values["active_slot"] = None
        with self.db.write() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def get(self, job_id: str) -> JobRecord | None:
        """One job by id."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return None if row is None else _job_from_row(row)

    def recent(self, limit: int = 50) -> list[JobRecord]:
        """The newest jobs first."""
        query = sa.select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [_job_from_row(row) for row in conn.execute(query).mappings()]

    def fail_stale(self, older_than: float) -> int:
        """Mark queued or running jobs whose heartbeat stopped before ``older_than`` as failed."""
        stale = sa.and_(
            jobs.c.active_slot.is_not(None),
            sa.func.coalesce(jobs.c.heartbeat_at, jobs.c.created_at) < older_than,
        )
        with self.db.write() as conn:
            result = conn.execute(
                jobs.update()
                .where(stale)
                .values(
                    status="failed",
                    active_slot=None,
                    finished_at=time.time(),
                    error="interrupted: the process running it stopped",
                )
            )
        return int(result.rowcount or 0)


def _job_from_row(row: Any) -> JobRecord:
    values = dict(row)
    values.pop("active_slot", None)
    values["options"] = msgspec.json.decode(values["options"])
    if values["result"] is not None:
        values["result"] = msgspec.json.decode(values["result"])
    return JobRecord(**values)
