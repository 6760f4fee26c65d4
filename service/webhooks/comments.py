"""What the router writes in a ticket's comment when write-back mode is ``label+comment``."""

from __future__ import annotations

from model.decision import Decision

__all__ = ["comment_text"]


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
