"""The decision: what every surface returns for one classified ticket."""

from __future__ import annotations

import msgspec

__all__ = ["Decision", "Term"]


class Term(msgspec.Struct, frozen=True):
    """A term of the ticket and how far it pushed the chosen team above the others."""

    term: str
    weight: float


class Decision(msgspec.Struct, frozen=True, omit_defaults=True):
    """The team for a ticket, with calibrated scores for every team.

    ``id`` echoes a batch item's id, ``decision_id`` names a batch result's row in the audit trail
    (for feedback), and ``truncated`` is set only when the text was cut to the length limit before
    classification; all three are left out otherwise. ``rule`` names the routing rule that decided
    (the scores stay the model's), and ``skipped`` says that rule asked to leave the ticket alone.
    """

    team: str
    confidence: float
    abstained: bool
    scores: dict[str, float]
    explanation: list[Term]
    model_version: str
    id: str | None = None
    truncated: bool = False
    rule: str | None = None
    skipped: bool = False
    decision_id: str | None = None
