"""Corrections: people's statements of which team owns a ticket, kept for the next training."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import CorrectionRecord
from service.store.schema import corrections
from service.store.triage import resolve

__all__ = ["Corrections"]


class Corrections:
    """The corrections table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: CorrectionRecord) -> None:
        """Store one correction; the triage rows it answers leave the queue in the same transaction."""
        with self.db.write() as conn:
            conn.execute(corrections.insert().values(**msgspec.structs.asdict(record)))
            resolve(conn, record)

    def get(self, correction_id: str) -> CorrectionRecord | None:
        """One correction by id."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(corrections).where(corrections.c.id == correction_id)).mappings().first()
        return None if row is None else CorrectionRecord(**dict(row))

    def page(self, limit: int = 100, before: str | None = None) -> list[CorrectionRecord]:
        """Corrections, newest first; ``before`` is the id of the last one of the previous page."""
        query = sa.select(corrections).order_by(corrections.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(corrections.c.id < before)
        with self.db.read() as conn:
            return [CorrectionRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def for_decision(self, decision_id: str) -> list[CorrectionRecord]:
        """The corrections made to one decision, oldest first."""
        query = sa.select(corrections).where(corrections.c.decision_id == decision_id).order_by(corrections.c.id)
        with self.db.read() as conn:
            return [CorrectionRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def all(self) -> list[CorrectionRecord]:
        """Every correction, oldest first (for training)."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(corrections).order_by(corrections.c.id)).mappings()
            return [CorrectionRecord(**dict(row)) for row in rows]
