"""Human outcomes of decided tickets, and production quality measured against them."""

from __future__ import annotations

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import OutcomeRecord
from service.store.schema import corrections, decisions, outcomes

__all__ = ["DecisionCounts", "Outcomes", "TeamOutcomes"]


class TeamOutcomes(msgspec.Struct, frozen=True):
    """For one team: routed decisions that got a human team, and how many of them it confirmed."""

    team: str
    judged: int
    right: int


class DecisionCounts(msgspec.Struct, frozen=True):
    """Decisions in a window: all of them, routed by the model, abstained, decided or skipped by a rule."""

    total: int
    routed: int
    abstained: int
    by_rule: int
    skipped: int


class Outcomes:
    """The outcomes table and the quality queries over decisions, outcomes and corrections."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, record: OutcomeRecord) -> None:
        """Store the human team of a decision; a later outcome for the same decision replaces it."""
        with self.db.write() as conn:
            conn.execute(outcomes.delete().where(outcomes.c.decision_id == record.decision_id))
            conn.execute(outcomes.insert().values(**msgspec.structs.asdict(record)))

    def get(self, decision_id: str) -> OutcomeRecord | None:
        """The outcome of one decision, if people gave one."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(outcomes).where(outcomes.c.decision_id == decision_id)).mappings().first()
        return None if row is None else OutcomeRecord(**dict(row))

    def team_outcomes(self, since: float, model_version: str) -> list[TeamOutcomes]:
        """Per team, the model's routed decisions since ``since`` that got a human team, and how many were right."""
        right = sa.func.sum(sa.case((outcomes.c.team == decisions.c.team, 1), else_=0))
        query = (
            sa.select(decisions.c.team, sa.func.count(), right)
            .join(outcomes, outcomes.c.decision_id == decisions.c.id)
            .where(
                decisions.c.created_at >= since,
                decisions.c.model_version == model_version,
                decisions.c.abstained == sa.false(),
                decisions.c.skipped == sa.false(),
                decisions.c.rule.is_(None),
            )
            .group_by(decisions.c.team)
        )
        with self.db.read() as conn:
            return [TeamOutcomes(str(team), int(n), int(ok or 0)) for team, n, ok in conn.execute(query)]

    def decision_counts(self, since: float, model_version: str) -> DecisionCounts:
        """How the decisions of ``model_version`` since ``since`` went."""
        by_model = decisions.c.rule.is_(None)
        query = sa.select(
            sa.func.count(),
            sa.func.sum(sa.case((sa.and_(by_model, decisions.c.abstained == sa.false()), 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(by_model, decisions.c.abstained == sa.true()), 1), else_=0)),
            sa.func.sum(sa.case((sa.and_(~by_model, decisions.c.skipped == sa.false()), 1), else_=0)),
            sa.func.sum(sa.case((decisions.c.skipped == sa.true(), 1), else_=0)),
        ).where(decisions.c.created_at >= since, decisions.c.model_version == model_version)
        with self.db.read() as conn:
            total, routed, abstained, ruled, skipped = conn.execute(query).one()
        return DecisionCounts(
            int(total or 0), int(routed or 0), int(abstained or 0), int(ruled or 0), int(skipped or 0)
        )

    def corrections_since(self, since: float) -> int:
        """How many corrections people made after ``since``."""
        query = sa.select(sa.func.count()).select_from(corrections).where(corrections.c.created_at > since)
        with self.db.read() as conn:
            return int(conn.execute(query).scalar() or 0)
