"""The taxonomy: which teams exist and what each one owns (``teams.toml``)."""

from __future__ import annotations

import tomllib
from collections.abc import Collection
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from model.errors import TaxonomyError

__all__ = ["Taxonomy", "TaxonomyChange", "Team", "diff_taxonomies", "load_taxonomy", "parse_taxonomy"]

TeamId = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
Sentence = Annotated[str, Meta(min_length=1, max_length=2000)]
TrackerName = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]


class Team(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One team: a stable id, its written responsibilities and optional evidence terms."""

    id: TeamId
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Sentence
    responsibilities: list[Sentence] = []
    terms: list[Annotated[str, Meta(min_length=1, max_length=200)]] = []
    # Names of tools and software whose tickets are this team's work when the organisation runs
    # them (a monitoring system, a deploy tool, a cluster add-on): each is evidence of its own.
    tools: list[Annotated[str, Meta(min_length=1, max_length=200)]] = []
    labels: dict[TrackerName, Annotated[str, Meta(min_length=1, max_length=255)]] = {}
    # The routed precision this team's tickets must reach (else TICKET_ROUTER_TARGET_PRECISION):
    # its abstain threshold is chosen for it.
    target_precision: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None

    def label_for(self, tracker: str) -> str:
        """The label this team carries in ``tracker`` (default ``team:<id>`` lowercased)."""
        return self.labels.get(tracker) or f"team:{self.id.lower()}"


class _TaxonomyFile(msgspec.Struct, forbid_unknown_fields=True):
    teams: list[Team]


class Taxonomy(msgspec.Struct, frozen=True):
    """An ordered set of two or more teams; the order is the order of score vectors."""

    teams: tuple[Team, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        """Team ids in taxonomy order."""
        return tuple(t.id for t in self.teams)

    def get(self, team_id: str) -> Team | None:
        """The team with this id, or None."""
        for team in self.teams:
            if team.id == team_id:
                return team
        return None

    def team_for_label(self, tracker: str, label: str) -> str | None:
        """The team id whose ``tracker`` label is ``label`` (case-insensitive), or None."""
        wanted = label.casefold()
        for team in self.teams:
            if team.label_for(tracker).casefold() == wanted:
                return team.id
        return None

    def team_for_any_label(self, label: str, trackers: Collection[str]) -> str | None:
        """The team whose label in any of ``trackers`` is ``label`` (case-insensitive), or None."""
        for tracker in trackers:
            team = self.team_for_label(tracker, label)
            if team is not None:
                return team
        return None

    def targets(self) -> dict[str, float]:
        """The teams that set their own ``target_precision``, with it."""
        return {t.id: t.target_precision for t in self.teams if t.target_precision is not None}

    def to_toml_dict(self) -> dict[str, object]:
        """A plain-data form, for hashing and reports."""
        return {"teams": [msgspec.to_builtins(t) for t in self.teams]}


def parse_taxonomy(text: str, source: str = "<teams.toml>", trackers: Collection[str] | None = None) -> Taxonomy:
    """Parse and validate taxonomy TOML text; errors name ``source``.

    ``trackers`` are the tracker names a team's ``labels`` may use (the service knows them; the
    core does not); None accepts any name.
    """
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"{source}: not valid TOML: {exc}") from None
    try:
        parsed = msgspec.convert(raw, _TaxonomyFile)
    except msgspec.ValidationError as exc:
        raise TaxonomyError(f"{source}: {exc}") from None
    teams = parsed.teams
    if len(teams) < 2:
        raise TaxonomyError(f"{source}: a taxonomy needs at least two teams, found {len(teams)}")
    seen: set[str] = set()
    for team in teams:
        key = team.id.casefold()
        if key in seen:
            raise TaxonomyError(f"{source}: team id {team.id!r} is defined twice")
        seen.add(key)
        unknown = set(team.labels) - set(trackers) if trackers is not None else set()
        if unknown:
            raise TaxonomyError(
                f"{source}: team {team.id!r} has labels for unknown trackers {sorted(unknown)};"
                f" known trackers are {list(trackers or ())}"
            )
    named = {tracker for team in teams for tracker in team.labels} | set(trackers or ())
    for tracker in sorted(named):
        labels = [t.label_for(tracker).casefold() for t in teams]
        if len(set(labels)) != len(labels):
            raise TaxonomyError(f"{source}: two teams share the same {tracker} label")
    return Taxonomy(teams=tuple(teams))


def load_taxonomy(path: Path, trackers: Collection[str] | None = None) -> Taxonomy:
    """Read ``teams.toml`` (or a directory holding one); ``trackers`` as for ``parse_taxonomy``."""
    if path.is_dir():
        path = path / "teams.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaxonomyError(f"{path}: taxonomy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy: {exc}") from None
    return parse_taxonomy(text, str(path), trackers)


class TaxonomyChange(msgspec.Struct, frozen=True):
    """How a taxonomy differs from an earlier one, by team id."""

    added: list[str]
    removed: list[str]
    renamed: dict[str, str]
    redescribed: list[str]

    @property
    def changed(self) -> bool:
        """Whether anything differs."""
        return bool(self.added or self.removed or self.renamed or self.redescribed)


def diff_taxonomies(old: Taxonomy, new: Taxonomy) -> TaxonomyChange:
    """Teams added and removed (by id), display names changed, descriptions or responsibilities rewritten."""
    old_by_id = {t.id: t for t in old.teams}
    new_by_id = {t.id: t for t in new.teams}
    kept = [team_id for team_id in new_by_id if team_id in old_by_id]
    return TaxonomyChange(
        added=[team_id for team_id in new_by_id if team_id not in old_by_id],
        removed=[team_id for team_id in old_by_id if team_id not in new_by_id],
        renamed={
            team_id: new_by_id[team_id].name for team_id in kept if new_by_id[team_id].name != old_by_id[team_id].name
        },
        redescribed=[team_id for team_id in kept if _wording(new_by_id[team_id]) != _wording(old_by_id[team_id])],
    )


def _wording(team: Team) -> tuple[object, ...]:
    """What training reads of a team besides its id and labels."""
    return (team.description, team.responsibilities, team.terms, team.tools)
