"""Labelled examples: reading, validating and fingerprinting JSON Lines ticket files."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from model.errors import DatasetError, Problem
from model.taxonomy import Taxonomy, load_taxonomy
from model.text import compose, fingerprint, model_text

__all__ = [
    "Dataset",
    "LabelledTicket",
    "TrainingData",
    "dataset_sha256",
    "example_files",
    "load_examples",
    "load_training_data",
    "parse_example_lines",
]


class _ExampleRow(msgspec.Struct, forbid_unknown_fields=True):
    """One line of a labelled-examples file, as written."""

    team: str
    title: str | None = None
    body: str | None = None
    text: str | None = None
    id: str | int | None = None
    source: str | None = None
    alt: str | None = None
    repository: Annotated[str, Meta(min_length=1, max_length=300)] | None = None


class LabelledTicket(msgspec.Struct, frozen=True):
    """A ticket whose owning team is known; ``weight`` scales its say in training.

    ``alt`` names a defensible second team for a ticket that honestly fits two; training
    splits the ticket's weight between both, so the model learns such tickets are uncertain.
    """

    title: str
    body: str
    team: str
    alt: str | None = None
    id: str | None = None
    source: str | None = None
    origin: str = ""
    weight: float = 1.0
    repository: str | None = None

    @property
    def text(self) -> str:
        """Title, body and (when known) repository, whole: what duplicates are judged on."""
        return compose(self.title, self.body, self.repository)

    @property
    def model_text(self) -> str:
        """What the model reads of this ticket (the body cut to its first part)."""
        return model_text(self.title, self.body, self.repository)


Dataset = list[LabelledTicket]

_row_decoder = msgspec.json.Decoder(_ExampleRow)


def parse_example_lines(
    lines: Iterable[bytes | str],
    source: str,
    taxonomy: Taxonomy | None,
    problems: list[Problem],
) -> Iterator[tuple[int, LabelledTicket]]:
    """Yield ``(line number, ticket)`` for every valid line; append located problems for the rest.

    Blank lines are skipped. When ``taxonomy`` is given, a team outside it is a problem.
    """
    known = set(taxonomy.ids) if taxonomy is not None else None
    for number, raw in enumerate(lines, start=1):
        data = raw.encode("utf-8") if isinstance(raw, str) else raw
        if not data.strip():
            continue
        try:
            row = _row_decoder.decode(data)
        except msgspec.ValidationError as exc:
            problems.append(Problem(source, number, f"invalid example: {exc}"))
            continue
        except msgspec.DecodeError as exc:
            # msgspec reports bad UTF-8 as a decode error (older releases raised UnicodeDecodeError)
            utf8 = "UTF-8" in str(exc)
            problems.append(Problem(source, number, "not valid UTF-8" if utf8 else f"malformed JSON: {exc}"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(source, number, "not valid UTF-8"))
            continue
        except RecursionError:
            problems.append(Problem(source, number, "JSON nested too deeply"))
            continue
        if known is not None and row.team not in known:
            problems.append(Problem(source, number, f"unknown team {row.team!r}; the taxonomy has {sorted(known)}"))
            continue
        if row.alt is not None and known is not None and row.alt not in known:
            problems.append(Problem(source, number, f"unknown alt team {row.alt!r}; the taxonomy has {sorted(known)}"))
            continue
        if row.alt is not None and row.alt == row.team:
            problems.append(Problem(source, number, f"alt names the same team as team ({row.team!r})"))
            continue
        if row.text is not None and (row.title is not None or row.body is not None):
            problems.append(Problem(source, number, "give either 'text' or 'title'/'body', not both"))
            continue
        title = (row.text if row.text is not None else row.title) or ""
        body = "" if row.text is not None else (row.body or "")
        if not (title.strip() or body.strip()):
            problems.append(Problem(source, number, "empty text: the ticket has no title, body or text"))
            continue
        yield (
            number,
            LabelledTicket(
                title=title,
                body=body,
                team=row.team,
                alt=row.alt,
                id=None if row.id is None else str(row.id),
                source=row.source,
                origin=f"{source}:{number}",
                repository=row.repository,
            ),
        )


def example_files(path: Path) -> list[Path]:
    """The JSONL files under ``path`` (itself if a file), in a stable order."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.jsonl") if p.is_file())


def load_examples(paths: Sequence[Path], taxonomy: Taxonomy | None) -> Dataset:
    """Read and validate labelled examples; raise ``DatasetError`` listing every problem.

    Problems: malformed JSON or fields, a team outside the taxonomy, an empty text, and
    duplicates (the same text twice, whichever teams they name).
    """
    problems: list[Problem] = []
    tickets: Dataset = []
    first_seen: dict[str, str] = {}
    for path in paths:
        try:
            handle = path.open("rb")
        except OSError as exc:
            problems.append(Problem(str(path), 0, f"cannot read: {exc}"))
            continue
        with handle:
            for number, ticket in parse_example_lines(handle, str(path), taxonomy, problems):
                key = fingerprint(ticket.text)
                if key in first_seen:
                    problems.append(Problem(str(path), number, f"duplicate of the ticket at {first_seen[key]}"))
                    continue
                first_seen[key] = f"{path}:{number}"
                tickets.append(ticket)
    if problems:
        raise DatasetError(problems)
    return tickets


class TrainingData(msgspec.Struct, frozen=True):
    """A taxonomy with its labelled examples, as read from a training-data directory."""

    taxonomy: Taxonomy
    examples: tuple[LabelledTicket, ...]


def load_training_data(root: Path, trackers: Collection[str] | None = None) -> TrainingData:
    """Read ``teams.toml`` and every ``examples/**/*.jsonl`` under ``root``; ``trackers`` as for the taxonomy."""
    taxonomy = load_taxonomy(root, trackers)
    examples_dir = root / "examples"
    files = example_files(examples_dir) if examples_dir.exists() else []
    return TrainingData(taxonomy=taxonomy, examples=tuple(load_examples(files, taxonomy)))


def dataset_sha256(taxonomy: Taxonomy, examples: Sequence[LabelledTicket]) -> str:
    """A fingerprint of exactly what training reads: the taxonomy and each (text, team)."""
    digest = hashlib.sha256()
    digest.update(msgspec.json.encode(taxonomy.to_toml_dict()))
    for ticket in examples:
        row: list[object] = [ticket.title, ticket.body, ticket.team, ticket.weight]
        if ticket.alt is not None or ticket.repository is not None:
            row += [ticket.alt, ticket.repository]
        digest.update(msgspec.json.encode(row))
    return digest.hexdigest()
