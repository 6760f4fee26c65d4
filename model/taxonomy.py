"""The taxonomy: which teams exist and what each one owns (``teams.toml``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from model.errors import TaxonomyError

__all__ = ["TRACKERS", "Taxonomy", "TaxonomyChange", "Team", "diff_taxonomies", "load_taxonomy", "parse_taxonomy"]

TRACKERS = ("github", "gitlab", "jira")

TeamId = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
Sentence = Annotated[str, Meta(min_length=1, max_length=2000)]


class Team(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One team: a stable id, its written responsibilities and optional evidence terms."""

    id: TeamId
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    description: Sentence
    responsibilities: list[Sentence] = []
    terms: list[Annotated[str, Meta(min_length=1, max_length=200)]] = []
    labels: dict[str, Annotated[str, Meta(min_length=1, max_length=255)]] = {}

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

    def to_toml_dict(self) -> dict[str, object]:
        """A plain-data form, for hashing, reports and manifests."""
        return {"teams": [msgspec.to_builtins(t) for t in self.teams]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Taxonomy:
        """The taxonomy stored in a manifest."""
        return cls(teams=tuple(msgspec.convert(data.get("teams", []), list[Team])))


def parse_taxonomy(text: str, source: str = "<teams.toml>") -> Taxonomy:
    """Parse and validate taxonomy TOML text; errors name ``source``."""
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
        unknown = set(team.labels) - set(TRACKERS)
        if unknown:
            raise TaxonomyError(
                f"{source}: team {team.id!r} has labels for unknown trackers {sorted(unknown)};"
                f" known trackers are {list(TRACKERS)}"
            )
    for tracker in TRACKERS:
        labels = [t.label_for(tracker).casefold() for t in teams]
        if len(set(labels)) != len(labels):
            raise TaxonomyError(f"{source}: two teams share the same {tracker} label")
    return Taxonomy(teams=tuple(teams))


def load_taxonomy(path: Path) -> Taxonomy:
    """Read ``teams.toml`` (or a directory holding one)."""
    if path.is_dir():
        path = path / "teams.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaxonomyError(f"{path}: taxonomy file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{path}: cannot read taxonomy: {exc}") from None
    return parse_taxonomy(text, str(path))


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
        redescribed=[
            team_id
            for team_id in kept
            if (new_by_id[team_id].description, new_by_id[team_id].responsibilities, new_by_id[team_id].terms)
            != (old_by_id[team_id].description, old_by_id[team_id].responsibilities, old_by_id[team_id].terms)
        ],
    )
