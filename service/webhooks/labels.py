"""Which labels a write-back may touch: only the labels the router owns, never a protected one.

The router owns the teams' labels in a tracker (``teams.toml``) and the triage label. It adds
one of them, removes only labels it added itself (``ours``: what its earlier write-backs wrote),
and never touches a label listed in ``TICKET_ROUTER_PROTECTED_LABELS``. Every write-back's labels
are planned here, so this one function is what the allowlist test holds to those promises.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from model.taxonomy import Taxonomy

__all__ = ["LabelPlan", "owned_labels", "plan_labels", "wanted_label"]


@dataclass(frozen=True, slots=True)
class LabelPlan:
    """The label to add (None: nothing) and the labels to take away."""

    add: str | None
    remove: list[str]

    @property
    def empty(self) -> bool:
        """Whether there is nothing to write."""
        return self.add is None and not self.remove


def owned_labels(taxonomy: Taxonomy, tracker: str, triage_label: str) -> set[str]:
    """Every label the router may write in ``tracker``, casefolded."""
    return {team.label_for(tracker).casefold() for team in taxonomy.teams} | {triage_label.casefold()}


def wanted_label(taxonomy: Taxonomy, tracker: str, team_id: str, unclear: bool, triage_label: str) -> str:
    """The label a decision asks for: its team's, or the triage label when unclear or the team is unknown."""
    team = taxonomy.get(team_id)
    return triage_label if unclear or team is None else team.label_for(tracker)


def plan_labels(
    wanted: str,
    present: Sequence[str],
    ours: Collection[str],
    owned: Collection[str],
    protected: Collection[str],
) -> LabelPlan:
    """Add ``wanted`` unless it is there, take away our other labels; only owned, unprotected labels.

    ``present`` are the ticket's labels now, ``ours`` the labels our write-backs wrote on it,
    ``owned`` and ``protected`` label names (all compared without case).
    """
    mine = {label.casefold() for label in ours}
    allowed = {label.casefold() for label in owned} - {label.casefold() for label in protected}
    target = wanted.casefold()
    have = {label.casefold() for label in present}
    add = wanted if target in allowed and target not in have else None
    remove = [
        label
        for label in dict.fromkeys(present)
        if label.casefold() in mine and label.casefold() in allowed and label.casefold() != target
    ]
    return LabelPlan(add, remove)
