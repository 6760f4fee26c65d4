"""The questions asked on tickets: at most one per ticket, ever, shared by every replica."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import QuestionRecord
from service.store.schema import questions

__all__ = ["Questions"]


def _record(row: object) -> QuestionRecord:
    values = dict(row)  # type: ignore[call-overload]
    values["teams"] = msgspec.json.decode(values["teams"])
    return QuestionRecord(**values)


class Questions:
    """The questions table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, ticket_ref: str) -> QuestionRecord | None:
        """The question asked on a ticket, if one was."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(questions).where(questions.c.ticket_ref == ticket_ref)).mappings().first()
        return None if row is None else _record(row)

    def ask(self, record: QuestionRecord) -> bool:
        """Store a question; False when the ticket was already asked one (here or on another replica)."""
        values = msgspec.structs.asdict(record)
        values["teams"] = msgspec.json.encode(record.teams).decode()
        try:
            with self.db.write() as conn:
                conn.execute(questions.insert().values(**values))
        except sa.exc.IntegrityError:
            return False
        return True

    def answer(self, ticket_ref: str, at: float, decision_id: str, outcome: str) -> bool:
        """Mark the ticket's open question answered with what the answer did; False when none was open."""
        with self.db.write() as conn:
            changed = conn.execute(
                questions.update()
                .where(questions.c.ticket_ref == ticket_ref, questions.c.status == "asked")
                .values(status="answered", answered_at=at, answer_decision_id=decision_id, outcome=outcome)
            )
        return bool(changed.rowcount)

    def list(self, limit: int = 100, status: str | None = None) -> list[QuestionRecord]:
        """Questions, newest first."""
        query = sa.select(questions).order_by(questions.c.asked_at.desc()).limit(limit)
        if status is not None:
            query = query.where(questions.c.status == status)
        with self.db.read() as conn:
            return [_record(row) for row in conn.execute(query).mappings()]
