"""The routing rules the service and the CLI use: read from ``TICKET_ROUTER_RULES`` and checked against the teams."""

from __future__ import annotations

from collections.abc import Collection

from model.rules import RuleFacts, RuleSet, load_rules
from model.taxonomy import load_taxonomy
from service.schemas import TicketContext
from service.settings import Settings
from service.trackers import registry as trackers

__all__ = ["facts_of", "rules_for"]


def rules_for(settings: Settings, teams: Collection[str] | None = None) -> RuleSet:
    """The configured rules, validated against ``teams`` (default: the teams of the training data's teams.toml).

    No rules file means no rules; a malformed one raises ``RulesError`` naming the rule.
    """
    path = settings.rules_path
    if not path.exists():
        return RuleSet((), str(path))
    if teams is None:
        teams = load_taxonomy(settings.training_data, trackers.names()).ids
    return load_rules(path, teams)


def facts_of(title: str | None, context: TicketContext | None) -> RuleFacts:
    """What the rules see of an API ticket: its title and the caller's ``context``."""
    if context is None:
        return RuleFacts(title=title)
    return RuleFacts(
        title=title,
        tracker=context.tracker,
        repository=context.repository,
        author=context.author,
        labels=tuple(context.labels),
    )
