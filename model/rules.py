"""Routing rules: an operator's ordered rules that decide before the model does (``rules.toml``).

A rule has a ``name``, an outcome (``team = "DevOps"``, or ``skip = true``: leave the ticket
alone) and conditions that must all hold: ``author`` (any of, exact, case-insensitive),
``title`` (a regular expression), ``repository`` (glob patterns over ``owner/name`` or a project
path), ``labels`` (any of, case-insensitive) and ``tracker`` (any of). The first rule that
matches decides; a rule's decision keeps the model's scores, so what the model thought is never
lost.

Titles are matched with RE2, whose time is linear in the text, and only the first
``MAX_TITLE_CHARS`` of a title are read: no pattern and no ticket can make matching slow. A
pattern RE2 does not support (backreferences, look-around) is refused when the file is read.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import msgspec
import re2
from msgspec import Meta

from model.decision import Decision
from model.errors import RulesError

__all__ = ["MAX_TITLE_CHARS", "Rule", "RuleFacts", "RuleSet", "load_rules", "parse_rules"]

MAX_TITLE_CHARS = 1000

Name = Annotated[str, Meta(min_length=1, max_length=100)]
Value = Annotated[str, Meta(min_length=1, max_length=300)]
OneOrMore = Value | list[Value]


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One rule as written in ``rules.toml``: its name, its outcome and its conditions."""

    name: Name
    team: Value | None = None
    skip: bool = False
    author: OneOrMore = []
    title: Annotated[str, Meta(min_length=1, max_length=1000)] | None = None
    repository: OneOrMore = []
    labels: OneOrMore = []
    tracker: OneOrMore = []


class _RulesFile(msgspec.Struct, forbid_unknown_fields=True):
    rules: list[Rule] = []


@dataclass(frozen=True, slots=True)
class RuleFacts:
    """What rules can see of a ticket: its title and where it comes from."""

    title: str | None = None
    tracker: str | None = None
    repository: str | None = None
    author: str | None = None
    labels: tuple[str, ...] = ()


def _many(value: str | list[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # errors are reported as RulesError, not on stderr
    return options


class _Compiled:
    """A rule ready to match: folded value sets and a compiled title pattern."""

    __slots__ = ("authors", "labels", "repositories", "rule", "title", "trackers")

    def __init__(self, rule: Rule, source: str) -> None:
        self.rule = rule
        self.authors = frozenset(a.casefold() for a in _many(rule.author))
        self.labels = frozenset(label.casefold() for label in _many(rule.labels))
        self.repositories = tuple(p.casefold() for p in _many(rule.repository))
        self.trackers = frozenset(_many(rule.tracker))
        self.title: Any = None
        if rule.title is not None:
            try:
                self.title = re2.compile(rule.title, _options())
            except re2.error as exc:
                detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
                raise RulesError(
                    f"{source}: rule {rule.name!r}: title is not a usable regular expression: {detail}"
                ) from None

    def matches(self, facts: RuleFacts) -> bool:
        if self.trackers and facts.tracker not in self.trackers:
            return False
        if self.authors and (facts.author or "").casefold() not in self.authors:
            return False
        if self.labels and not any(label.casefold() in self.labels for label in facts.labels):
            return False
        if self.repositories:
            place = (facts.repository or "").casefold()
            if not place or not any(fnmatch.fnmatchcase(place, pattern) for pattern in self.repositories):
                return False
        return self.title is None or self.title.search((facts.title or "")[:MAX_TITLE_CHARS]) is not None


class RuleSet:
    """Ordered, validated rules; empty when there is no rules file."""

    def __init__(self, rules: Sequence[Rule] = (), source: str = "<rules.toml>") -> None:
        self.source = source
        self._compiled = tuple(_Compiled(rule, source) for rule in rules)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The rules, in the order they are tried."""
        return tuple(c.rule for c in self._compiled)

    def __len__(self) -> int:
        return len(self._compiled)

    def first_match(self, facts: RuleFacts) -> Rule | None:
        """The first rule whose conditions all hold for ``facts``, or None."""
        for compiled in self._compiled:
            if compiled.matches(facts):
                return compiled.rule
        return None

    def apply(self, decision: Decision, facts: RuleFacts) -> Decision:
        """The decision after the rules: a matching rule's team or skip, with the model's scores kept.

        A rule naming a team the deciding model does not know (the taxonomy changed since the
        rules were checked) is passed over.
        """
        for compiled in self._compiled:
            rule = compiled.rule
            if rule.team is not None and rule.team not in decision.scores:
                continue
            if not compiled.matches(facts):
                continue
            if rule.skip:
                return msgspec.structs.replace(decision, skipped=True, rule=rule.name)
            assert rule.team is not None
            return msgspec.structs.replace(
                decision,
                team=rule.team,
                confidence=decision.scores[rule.team],
                abstained=False,
                explanation=[],
                rule=rule.name,
            )
        return decision


def parse_rules(text: str, source: str = "<rules.toml>", teams: Collection[str] | None = None) -> RuleSet:
    """Parse and validate rules TOML; every error names ``source`` and the rule.

    ``teams`` are the team ids a rule may route to (None accepts any).
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    try:
        parsed = msgspec.convert(raw, _RulesFile)
    except msgspec.ValidationError as exc:
        raise RulesError(f"{source}: {exc}") from None
    seen: set[str] = set()
    for position, rule in enumerate(parsed.rules, start=1):
        where = f"{source}: rule {rule.name!r} (rule {position})"
        if rule.name.casefold() in seen:
            raise RulesError(f"{where}: the name is used by an earlier rule")
        seen.add(rule.name.casefold())
        if (rule.team is None) == (not rule.skip):
            raise RulesError(f'{where}: give exactly one outcome, `team = "..."` or `skip = true`')
        if rule.team is not None and teams is not None and rule.team not in teams:
            raise RulesError(f"{where}: unknown team {rule.team!r}; the taxonomy has {sorted(teams)}")
        if not (rule.author or rule.title or rule.repository or rule.labels or rule.tracker):
            raise RulesError(f"{where}: no conditions, so it would decide every ticket; give at least one")
    return RuleSet(parsed.rules, source)


def load_rules(path: Path, teams: Collection[str] | None = None) -> RuleSet:
    """Read a rules file; a missing file means no rules."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RuleSet((), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"{path}: cannot read rules: {exc}") from None
    return parse_rules(text, str(path), teams)
