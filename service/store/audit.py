"""The audit trail: every decision (which ticket went where, by which model version) and shadow decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import DecisionRecord, ShadowComparison, ShadowRecord, TriageRecord
from service.store.schema import corrections, decisions, shadow_decisions
from service.store.triage import insert_triage

__all__ = ["AuditTrail"]

_ROWS_PER_INSERT = 500  # 5,000 parameters, well under SQLite's limit of 32,766


class AuditTrail:
    """Decisions and what a shadowed candidate decided for the same tickets."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The audit insert is the hot write: compiled once for this dialect and executed with
        # plain parameter rows, skipping SQLAlchemy's per-row processing.
        compiled = decisions.insert().compile(dialect=db.engine.dialect)
        self._insert_decisions_sql = str(compiled)
        self._insert_decisions_keys: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        )
        head, _, values = self._insert_decisions_sql.partition(" VALUES ")
        self._insert_head, self._insert_values = head, values

    def add(self, records: Sequence[DecisionRecord], triage: Sequence[TriageRecord] = ()) -> None:
        """Insert audit rows, and the triage rows of those a person should look at, in one transaction.

        A decision for a ticket that has open triage rows supersedes them (the ticket was decided again).
        """
        if not records:
            return
        rows = [_decision_row(r) for r in records]
        keys = self._insert_decisions_keys
        with self.db.write() as conn:
            if keys is None:  # named parameters (PostgreSQL): the driver batches executemany itself
                conn.exec_driver_sql(self._insert_decisions_sql, rows)
            else:
                # Positional (SQLite): one multi-row INSERT per chunk, so the driver steps once
                # instead of once a row (each step releases and re-takes the GIL).
                for start in range(0, len(rows), _ROWS_PER_INSERT):
                    chunk = rows[start : start + _ROWS_PER_INSERT]
                    sql = f"{self._insert_head} VALUES {', '.join([self._insert_values] * len(chunk))}"
                    conn.exec_driver_sql(sql, tuple(row[k] for row in chunk for k in keys))
            if triage or any(r.ticket_ref is not None for r in records):
                insert_triage(conn, triage, records)

    def get(self, decision_id: str) -> DecisionRecord | None:
        """One audit row by id."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).mappings().first()
        return None if row is None else _decision_from_row(row)

    def recent(self, limit: int = 100, ticket_ref: str | None = None) -> list[DecisionRecord]:
        """The newest audit rows first, optionally for one ticket."""
        query = sa.select(decisions).order_by(decisions.c.created_at.desc()).limit(limit)
        if ticket_ref is not None:
            query = query.where(decisions.c.ticket_ref == ticket_ref)
        with self.db.read() as conn:
            return [_decision_from_row(row) for row in conn.execute(query).mappings()]

    def count(self) -> int:
        """How many decisions the audit trail holds."""
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() or 0)

    def add_shadow(self, records: Sequence[ShadowRecord]) -> None:
        """Record what a shadowed candidate decided."""
        if records:
            with self.db.write() as conn:
                conn.execute(shadow_decisions.insert(), [msgspec.structs.asdict(r) for r in records])

    def shadow_comparisons(self, version: str) -> list[ShadowComparison]:
        """Every shadowed decision of ``version`` beside the active decision and the latest correction."""
        latest = (
            sa.select(corrections.c.decision_id, sa.func.max(corrections.c.id).label("last"))
            .where(corrections.c.decision_id.is_not(None))
            .group_by(corrections.c.decision_id)
            .subquery()
        )
        corrected = corrections.alias("corrected")
        query = (
            sa.select(
                decisions.c.id,
                decisions.c.team,
                shadow_decisions.c.team.label("shadow_team"),
                corrected.c.team.label("fixed"),
            )
            .join(decisions, decisions.c.id == shadow_decisions.c.decision_id)
            .outerjoin(latest, latest.c.decision_id == decisions.c.id)
            .outerjoin(corrected, corrected.c.id == latest.c.last)
            .where(shadow_decisions.c.model_version == version)
        )
        with self.db.read() as conn:
            return [ShadowComparison(row[0], row[1], row[2], row[3]) for row in conn.execute(query)]


def _decision_row(record: DecisionRecord) -> dict[str, Any]:
    row = msgspec.structs.asdict(record)
    row["scores"] = msgspec.json.encode(record.scores).decode()
    return row


def _decision_from_row(row: Any) -> DecisionRecord:
    values = dict(row)
    values["scores"] = msgspec.json.decode(values["scores"])
    values["abstained"] = bool(values["abstained"])
    values["skipped"] = bool(values["skipped"])
    return DecisionRecord(**values)
