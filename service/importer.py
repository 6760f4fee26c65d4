"""``ticket-router import``: an organisation's labelled tracker export turned into training examples.

Reads anything ``label`` reads (gh JSON with labels, GitLab and Jira CSV exports, CSV, JSON Lines
with a team column), finds each ticket's team (its team column, else a team label of any
tracker as teams.toml names them), and appends the tickets it can use to a JSONL file of
examples. Nothing already among the examples is added twice, and every ticket left out is
counted with its reason, so the report says exactly what the export gave.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from model.dataset import example_files, load_examples
from model.errors import DataError
from model.files import atomic_output
from model.taxonomy import Taxonomy
from model.text import compose, fingerprint
from service.backlog import Columns, InputFormat, Row, check_text, detect_format, read_rows
from service.trackers import registry as trackers

__all__ = ["ImportJob", "ImportReport", "run_import"]


@dataclass(frozen=True)
class ImportJob:
    """What to import, from where, into which file."""

    input_path: Path
    output_path: Path
    input_format: InputFormat | None = None
    columns: Columns = field(default_factory=Columns)
    source: str | None = None
    dry_run: bool = False


class ImportReport(msgspec.Struct):
    """What an import did: tickets read, kept per team, and left out per reason."""

    input: str
    output: str
    format: str
    rows: int = 0
    kept: dict[str, int] = {}
    skipped: dict[str, int] = {}
    examples: list[str] = []  # the first few skipped rows as "line N: reason", to fix them
    warnings: list[str] = []  # usual columns the export lacks

    @property
    def kept_total(self) -> int:
        """How many examples were (or, in a dry run, would be) added."""
        return sum(self.kept.values())


_MAX_EXAMPLES = 10
_encoder = msgspec.json.Encoder()


def _team_of(row: Row, taxonomy: Taxonomy) -> tuple[str | None, str]:
    """The row's team and, when it has none that can be used, why."""
    if row.team is not None:
        if row.team in taxonomy.ids:
            return row.team, ""
        return None, f"unknown team {row.team!r} in the team column"
    names = trackers.names()
    teams = {team for label in row.labels if (team := taxonomy.team_for_any_label(label, names)) is not None}
    if len(teams) > 1:
        return None, "several team labels"
    if not teams:
        return None, "no team label and no team column"
    return teams.pop(), ""


def _known(paths: list[Path], taxonomy: Taxonomy) -> dict[str, str]:
    """Fingerprints of every example already in ``paths``, with where each is."""
    known: dict[str, str] = {}
    for path in paths:
        for ticket in load_examples([path], taxonomy):
            known.setdefault(fingerprint(ticket.text), ticket.origin)
    return known


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[io.BufferedReader]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    with handle:
        yield handle


def run_import(job: ImportJob, taxonomy: Taxonomy, examples_dir: Path) -> ImportReport:
    """Import ``job.input_path`` into ``job.output_path``; raises ``DataError`` when the input cannot be read."""
    existing = example_files(examples_dir) if examples_dir.exists() else []
    if job.output_path.exists() and job.output_path not in existing:
        existing.append(job.output_path)
    known = _known(existing, taxonomy)
    source = job.source or f"import:{job.input_path.stem}"
    with _opened(job.input_path) as buffered:
        head = buffered.peek(65536)
        check_text(head, str(job.input_path))
        fmt: InputFormat = job.input_format or detect_format(job.input_path.name, head.decode(errors="replace"))
        report = ImportReport(input=str(job.input_path), output=str(job.output_path), format=fmt)
        kept: list[bytes] = []
        here: set[str] = set()
        kept_teams: Counter[str] = Counter()
        skipped: Counter[str] = Counter()

        def skip(row: Row, reason: str) -> None:
            skipped[reason] += 1
            if len(report.examples) < _MAX_EXAMPLES:
                report.examples.append(f"line {row.line}: {reason}")

        for row in read_rows(buffered, fmt, job.columns, str(job.input_path), report.warnings.append):
            report.rows += 1
            if row.error is not None:
                skip(row, row.error)
                continue
            team, reason = _team_of(row, taxonomy)
            if team is None:
                skip(row, reason)
                continue
            key = fingerprint(compose(row.title, row.body, row.repository))
            if key in here:
                skip(row, "a duplicate of an earlier row")
                continue
            if key in known:
                skip(row, "already an example")
                continue
            here.add(key)
            record: dict[str, object] = {
                "id": f"{source}:{row.id if row.id is not None else row.line}",
                "title": row.title or "",
                "body": row.body or "",
                "team": team,
                "source": source,
            }
            if row.repository:
                record["repository"] = row.repository
            kept.append(_encoder.encode(record) + b"\n")
            kept_teams[team] += 1
    report.kept = dict(sorted(kept_teams.items()))
    report.skipped = dict(skipped.most_common())
    if kept and not job.dry_run:
        previous = job.output_path.read_bytes() if job.output_path.exists() else b""
        if previous and not previous.endswith(b"\n"):
            previous += b"\n"
        with atomic_output(job.output_path) as out:
            out.write(previous)
            out.writelines(kept)
    return report
