"""A question instead of a guess: when two teams are too close, ask the reporter what separates them.

The question is built from the two teams' responsibilities in ``teams.toml``: for each team, the
sentence the model itself reads as most clearly that team's and not the other's. So an
organisation's own teams get questions in their own words, with nothing to write by hand.
Sentences that name a team (the borderline rules between teams) are left out: they are written
for labellers, not reporters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from model.decision import Decision
from model.taxonomy import Taxonomy, Team

__all__ = ["QUESTION_HEAD", "Question", "ask_question", "candidates", "distinctive_sentence"]

QUESTION_HEAD = "Ticket Router could not tell"

ProbaOf = Callable[[Sequence[tuple[str | None, str | None]]], NDArray[np.float64]]


def candidates(decision: Decision, margin: float) -> tuple[str, str] | None:
    """The two teams to ask about, when the decision abstained or its top two are within ``margin``."""
    if decision.rule is not None or decision.skipped or len(decision.scores) < 2:
        return None
    (first, p1), (second, p2) = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)[:2]
    if decision.abstained or p1 - p2 < margin:
        return first, second
    return None


def _names_a_team(sentence: str, taxonomy: Taxonomy) -> bool:
    words = {w for team in taxonomy.teams for w in (team.id, team.name)}
    return any(re.search(rf"\b{re.escape(word)}\b", sentence) for word in words)


def distinctive_sentence(proba_of: ProbaOf, taxonomy: Taxonomy, team: Team, other: Team) -> str:
    """The sentence of ``team``'s responsibilities that the model reads most as ``team`` rather than ``other``."""
    sentences = [s for s in team.responsibilities if not _names_a_team(s, taxonomy)] or [team.description]
    proba = proba_of([(sentence, None) for sentence in sentences])
    mine, theirs = taxonomy.ids.index(team.id), taxonomy.ids.index(other.id)
    best = int(np.argmax(proba[:, mine] - proba[:, theirs]))
    return sentences[best]


class Question:
    """The question separating two teams, with the teams it is between."""

    __slots__ = ("teams", "text")

    def __init__(self, teams: tuple[str, str], text: str) -> None:
        self.teams = teams
        self.text = text


def _clause(sentence: str) -> str:
    sentence = sentence.strip().rstrip(".")
    return sentence[:1].lower() + sentence[1:] if sentence[1:2].islower() else sentence


def ask_question(proba_of: ProbaOf, taxonomy: Taxonomy, teams: tuple[str, str], triage_label: str) -> Question:
    """The comment that asks which of ``teams`` fits the ticket, in the teams' own words."""
    first, second = (taxonomy.get(team_id) for team_id in teams)
    if first is None or second is None:
        raise ValueError(f"teams {teams} are not in the taxonomy")
    a = distinctive_sentence(proba_of, taxonomy, first, second)
    b = distinctive_sentence(proba_of, taxonomy, second, first)
    text = (
        f"{QUESTION_HEAD} whether this ticket is for {first.name} or {second.name}, so it is labelled"
        f" {triage_label} for now. Which of these is it closer to?\n"
        f"1. {first.name}: {_clause(a)}.\n"
        f"2. {second.name}: {_clause(b)}.\n"
        "Please answer in a comment (or edit the ticket to say more): the router reads the answer and routes"
        " the ticket."
    )
    return Question(teams, text)
