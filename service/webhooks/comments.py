"""What the router writes in a ticket's comments: its decision (``label+comment``) and its questions.

A decision comment is one a person can act on: which team, why (the ticket's own words that
decided it), and how to correct it (the label to set instead, which the router learns from, or
the feedback API with the decision's id).
"""

from __future__ import annotations

from collections.abc import Mapping

from model.decision import Decision
from model.questions import Question

__all__ = ["comment_text", "question_comment"]


def comment_text(
    decision: Decision,
    label: str,
    decision_id: str,
    labels: Mapping[str, str],
    names: Mapping[str, str] | None = None,
) -> str:
    """The comment for ``decision``, written with ``label``; ``labels`` and ``names`` by team id."""
    names = names or {}
    ranked = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)
    shown = names.get(decision.team, decision.team)
    team = decision.team if shown == decision.team else f"{decision.team} ({shown})"
    words = ", ".join(f'"{term.term}"' for term in decision.explanation[:5])
    if decision.abstained:
        runner_up = f", then {ranked[1][0]} at {ranked[1][1]:.0%}" if len(ranked) > 1 else ""
        head = (
            f"Ticket Router is not confident enough to pick a team: its best guess is {team} at"
            f" {decision.confidence:.0%}{runner_up}. It labelled this ticket {label} for a person to route."
        )
        why = f"Why {decision.team}: the words {words} point that way." if words else ""
        others = [labels[t] for t in labels]
        fix = f"To route it, set the right team's label ({_either(others)})"
    else:
        head = f"Ticket Router routed this ticket to {team}: label {label}, confidence {decision.confidence:.0%}."
        why = f"Why: the words {words} point to {decision.team}." if words else ""
        if decision.rule is not None:
            why = f"Why: the routing rule {decision.rule!r} sends tickets like this one to {decision.team}."
        others = [labels[t] for t in labels if t != decision.team]
        fix = f"Wrong team? Replace {label} with the right team's label ({_either(others)})"
    fix += (
        "; the router records that as a correction and learns from it at its next training"
        f" (or send POST /v1/feedback with decision_id {decision_id} and the team)."
    )
    foot = f"Decision {decision_id}, model {decision.model_version}."
    return "\n".join(part for part in (head, why, fix, foot) if part)


def _either(labels: list[str]) -> str:
    if len(labels) <= 1:
        return "".join(labels)
    return ", ".join(labels[:-1]) + f" or {labels[-1]}"


def question_comment(question: Question, decision_id: str) -> str:
    """The question we post, signed with the decision id (how a retried post finds itself already there)."""
    return f"{question.text}\n(Ticket Router, decision {decision_id}.)"
