"""Renaming and merging teams across a training-data directory: ``teams.toml`` and every example.

A team id is written in two kinds of places: its ``[[teams]]`` table and the ``team`` (or
``alt``) of each labelled example. A rename changes the id everywhere; a merge relabels one
team's examples to another team and removes the first team's table. Only the lines that change
are rewritten (comments, order and formatting stay), and nothing is replaced until every new file
has been written beside the old one and the result validated: a change applies whole or not at all.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Collection
from pathlib import Path

import msgspec

from model.dataset import example_files, load_examples
from model.errors import DataError
from model.taxonomy import TeamId, load_taxonomy, parse_taxonomy

__all__ = ["FileChange", "TeamChange", "merge_teams", "rename_team"]

_TABLE = re.compile(r"^\s*\[\[\s*teams\s*\]\]\s*(#.*)?$")
_ID_LINE = re.compile(r"""^(\s*id\s*=\s*)(["'])(.*?)\2(\s*(#.*)?)$""")
_NAME_LINE = re.compile(r"""^(\s*name\s*=\s*)(["'])(.*?)\2(\s*(#.*)?)$""")
_TEAM_ID = msgspec.json.Decoder(TeamId)


class FileChange(msgspec.Struct, frozen=True):
    """One file a change rewrites, and how many of its lines."""

    path: str
    lines: int


class TeamChange(msgspec.Struct, frozen=True):
    """What a rename or merge changed (or, in a dry run, would change)."""

    action: str
    old: str
    new: str
    files: list[FileChange]
    examples: int
    dry_run: bool
    notes: list[str]


def _blocks(text: str) -> list[list[str]]:
    """teams.toml as blocks of lines: the preamble, then one block per ``[[teams]]`` table."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if _TABLE.match(line):
            blocks.append([])
        blocks[-1].append(line)
    return blocks


def _block_id(block: list[str]) -> str | None:
    for line in block:
        match = _ID_LINE.match(line.rstrip("\n"))
        if match:
            return match.group(3)
    return None


def _replace_value(line: str, pattern: re.Pattern[str], value: str) -> str:
    end = "\n" if line.endswith("\n") else ""
    match = pattern.match(line.rstrip("\n"))
    assert match is not None
    return f'{match.group(1)}"{value}"{match.group(4)}{end}'


def _relabelled_examples(root: Path, old: str, new: str) -> tuple[dict[Path, str], dict[Path, int]]:
    """Every examples file with ``old`` as team or alt changed to ``new``: the new texts, and lines changed."""
    changed: dict[Path, str] = {}
    counts: dict[Path, int] = {}
    examples = root / "examples"
    for path in example_files(examples) if examples.exists() else []:
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        count = 0
        for index, line in enumerate(lines):
            if not line.strip() or old not in line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # validation names it afterwards
            if not isinstance(row, dict) or old not in (row.get("team"), row.get("alt")):
                continue
            if row.get("team") == old:
                row["team"] = new
            if row.get("alt") == old:
                row["alt"] = new
            if row.get("alt") == row.get("team"):
                del row["alt"]  # a merge made the second team the first
            lines[index] = json.dumps(row, ensure_ascii=False) + ("\n" if line.endswith("\n") else "")
            count += 1
        if count:
            changed[path] = "".join(lines)
            counts[path] = count
    return changed, counts


def _apply(root: Path, files: dict[Path, str], trackers: Collection[str] | None) -> None:
    """Write every new file beside its old one, validate the whole result, then replace them all."""
    staged: dict[Path, Path] = {}
    try:
        for path, text in files.items():
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            staged[path] = Path(name)
        teams = root / "teams.toml"
        taxonomy = parse_taxonomy(files.get(teams, teams.read_text(encoding="utf-8")), str(teams), trackers)
        examples = root / "examples"
        paths = [staged.get(p, p) for p in (example_files(examples) if examples.exists() else [])]
        load_examples(paths, taxonomy)
    except BaseException:
        for partial in staged.values():
            partial.unlink(missing_ok=True)
        raise
    for path, partial in staged.items():
        os.replace(partial, path)


def _check_id(team_id: str) -> None:
    try:
        _TEAM_ID.decode(json.dumps(team_id))
    except msgspec.ValidationError:
        raise DataError(
            f"{team_id!r} is not a valid team id: a letter, then letters, digits, '_', '.' or '-' (64 at most)"
        ) from None


def rename_team(
    root: Path, old: str, new: str, *, dry_run: bool = False, trackers: Collection[str] | None = None
) -> TeamChange:
    """Rename team ``old`` to ``new`` in ``root``'s teams.toml and examples (``DataError`` if it cannot)."""
    _check_id(new)
    taxonomy = load_taxonomy(root, trackers)
    if taxonomy.get(old) is None:
        raise DataError(f"{root / 'teams.toml'}: no team {old!r}; the teams are {list(taxonomy.ids)}")
    if new.casefold() in {t.casefold() for t in taxonomy.ids if t != old}:
        raise DataError(f"team {new!r} already exists: use `ticket-router teams merge {old} {new}` to merge them")
    teams = root / "teams.toml"
    blocks = _blocks(teams.read_text(encoding="utf-8"))
    changed_lines = 0
    for block in blocks[1:]:
        if _block_id(block) != old:
            continue
        for i, line in enumerate(block):
            bare = line.rstrip("\n")
            if _ID_LINE.match(bare):
                block[i] = _replace_value(line, _ID_LINE, new)
                changed_lines += 1
            elif (match := _NAME_LINE.match(bare)) and match.group(3) == old:
                block[i] = _replace_value(line, _NAME_LINE, new)
                changed_lines += 1
    files = {teams: "".join(line for block in blocks for line in block)}
    examples, counts = _relabelled_examples(root, old, new)
    files.update(examples)
    counts[teams] = changed_lines
    notes = [f"stored corrections that name {old} are dropped at the next training (they are counted)"]
    team = taxonomy.get(old)
    if team is not None and team.labels:
        notes.append(f"its tracker labels stay as teams.toml names them ({', '.join(team.labels.values())})")
    elif team is not None:
        notes.append(
            f"its tracker labels change from team:{old.lower()} to team:{new.lower()}; to keep the old ones, give"
            f' the team labels = {{ github = "team:{old.lower()}", ... }} in teams.toml'
        )
    if not dry_run:
        _apply(root, files, trackers)
    return TeamChange("rename", old, new, _lines(files, counts), sum(counts.values()) - changed_lines, dry_run, notes)


def merge_teams(
    root: Path, old: str, into: str, *, dry_run: bool = False, trackers: Collection[str] | None = None
) -> TeamChange:
    """Merge team ``old`` into ``into``: its examples become ``into``'s and its table is removed."""
    taxonomy = load_taxonomy(root, trackers)
    for team_id in (old, into):
        if taxonomy.get(team_id) is None:
            raise DataError(f"{root / 'teams.toml'}: no team {team_id!r}; the teams are {list(taxonomy.ids)}")
    if old == into:
        raise DataError(f"cannot merge {old!r} into itself")
    if len(taxonomy.teams) <= 2:
        raise DataError("a taxonomy needs at least two teams: merging would leave one")
    teams = root / "teams.toml"
    blocks = _blocks(teams.read_text(encoding="utf-8"))
    kept = [blocks[0]] + [block for block in blocks[1:] if _block_id(block) != old]
    removed = sum(len(block) for block in blocks) - sum(len(block) for block in kept)
    files = {teams: "".join(line for block in kept for line in block)}
    examples, counts = _relabelled_examples(root, old, into)
    files.update(examples)
    counts[teams] = removed
    notes = [
        f"{old}'s table (description, responsibilities, terms, tools) was removed: add what {into} now owns to"
        f" {into}'s responsibilities",
        f"stored corrections that name {old} are dropped at the next training (they are counted)",
    ]
    if not dry_run:
        _apply(root, files, trackers)
    return TeamChange("merge", old, into, _lines(files, counts), sum(counts.values()) - removed, dry_run, notes)


def _lines(files: dict[Path, str], counts: dict[Path, int]) -> list[FileChange]:
    return [FileChange(str(path), counts[path]) for path in files]
