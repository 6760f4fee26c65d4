"""A question instead of a guess: when two teams are too close, ask the reporter what separates them.

The question is built from the two teams' responsibilities in ``teams.toml``: for each team, a
sentence the model itself reads as clearly that team's and not the other's (at least
``CLEAR_SHARE`` of the two), preferring the one sharing most words with the ticket, then the one
listed first (teams list their core work first). So an organisation's own teams get questions in
their own words, with nothing to write by hand. Sentences that name a team (the borderline rules
between teams) are left out: they are written for labellers, not reporters.
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
CLEAR_SHARE = 0.8
_WORDS = re.compile(r"[a-z0-9]{4,}")

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


def _words(text: str) -> set[str]:
    return set(_WORDS.findall(text.lower()))


def distinctive_sentence(proba_of: ProbaOf, taxonomy: Taxonomy, team: Team, other: Team, ticket: str = "") -> str:
    """A sentence of ``team``'s responsibilities that the model reads as ``team`` rather than ``other``.

    Of the clear ones, the one sharing most words with ``ticket``, then the first listed.
    """
    sentences = [s for s in team.responsibilities if not _names_a_team(s, taxonomy)] or [team.description]
    proba = proba_of([(sentence, None) for sentence in sentences])
    mine, theirs = proba[:, taxonomy.ids.index(team.id)], proba[:, taxonomy.ids.index(other.id)]
    share = mine / np.maximum(mine + theirs, 1e-12)
    clear = [i for i in range(len(sentences)) if share[i] >= CLEAR_SHARE] or [int(np.argmax(share))]
    words = _words(ticket)
    best = max(clear, key=lambda i: (len(words & _words(sentences[i])), -i))
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


def ask_question(
    proba_of: ProbaOf, taxonomy: Taxonomy, teams: tuple[str, str], triage_label: str, ticket: str = ""
) -> Question:
    """The comment that asks which of ``teams`` fits the ``ticket`` (its text), in the teams' own words."""
    first, second = (taxonomy.get(team_id) for team_id in teams)
    if first is None or second is None:
        raise ValueError(f"teams {teams} are not in the taxonomy")
    a = distinctive_sentence(proba_of, taxonomy, first, second, ticket)
    b = distinctive_sentence(proba_of, taxonomy, second, first, ticket)
    text = (
        f"{QUESTION_HEAD} whether this ticket is for {first.name} or {second.name}, so it is labelled"
        f" {triage_label} for now. Which of these is it closer to?\n"
        f"1. {first.name}: {_clause(a)}.\n"
        f"2. {second.name}: {_clause(b)}.\n"
        "Please answer in a comment (or edit the ticket to say more): the router reads the answer and routes"
        " the ticket."
    )
    return Question(teams, text)
