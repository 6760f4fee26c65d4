"""What the router writes in a ticket's comments: its decision (``label+comment``) and its questions."""

from __future__ import annotations

from model.decision import Decision
from model.questions import Question

__all__ = ["comment_text", "question_comment"]


def comment_text(decision: Decision, label: str, decision_id: str, top: int = 3) -> str:
    """What we tell the team: the team or triage, the confidence and the top scores."""
    ranked = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)[:top]
    scores = ", ".join(f"{team} {score:.0%}" for team, score in ranked)
    if decision.abstained:
        head = (
            f"Ticket Router is not confident enough to pick a team (best guess {decision.team}"
            f" at {decision.confidence:.0%}), so this ticket is labelled {label} for triage."
        )
    else:
        head = (
            f"Ticket Router routed this ticket to {decision.team}"
            f" (label {label}, confidence {decision.confidence:.0%})."
        )
    return f"{head}\nTop scores: {scores}.\nModel {decision.model_version}, decision {decision_id}."


def question_comment(question: Question, decision_id: str) -> str:
    """The question we post, signed with the decision id (how a retried post finds itself already there)."""
    return f"{question.text}\n(Ticket Router, decision {decision_id}.)"
