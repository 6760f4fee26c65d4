"""Backlog files: tracker exports and plain files read as a stream of rows, decisions written back out.

Readers yield one ``Row`` per input record, in order, never holding more than one chunk: JSON
Lines, CSV (columns chosen by name), the JSON array ``gh issue list --json`` prints, and the CSV
exports of GitLab and Jira, with or without a UTF-8 byte-order mark. A record that cannot be read
becomes a row with an ``error``, and labelling goes on; a file that is not text, a CSV header
without a column for the text, and broken CSV quoting stop the run before anything is written.
``Summary`` and ``Agreement`` count what a run did and how it agrees with the teams a backlog
already carries; ``backlog_output`` writes the decisions.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

import msgspec
import numpy as np

from model.batch import Labelled
from model.errors import DataError
from model.evaluation import confusion_scores
from model.taxonomy import Taxonomy
from service.trackers import registry as trackers

__all__ = [
    "FORMATS",
    "Agreement",
    "AgreementReport",
    "Columns",
    "InputFormat",
    "Row",
    "Summary",
    "Warn",
    "check_text",
    "detect_format",
    "read_rows",
]

InputFormat = Literal["jsonl", "csv", "gh-json", "gitlab-csv", "jira-csv"]
Warn = Callable[[str], None]
FORMATS: tuple[InputFormat, ...] = ("jsonl", "csv", "gh-json", "gitlab-csv", "jira-csv")


class Row(msgspec.Struct, frozen=True):
    """One input record: its position, its id, its text, and any label it already carries."""

    line: int
    id: str | None
    title: str | None
    body: str | None
    team: str | None = None
    labels: tuple[str, ...] = ()
    error: str | None = None
    repository: str | None = None
    author: str | None = None
    tracker: str | None = None


@dataclass(frozen=True)
class Columns:
    """Which CSV columns (or JSON fields) hold what; None means the format's usual name."""

    id: str | None = None
    title: str | None = None
    body: str | None = None
    text: str | None = None
    team: str | None = None
    labels: str | None = None
    repository: str | None = None
    # The repository of every row that has none of its own (``label --repository``).
    default_repository: str | None = None
    author: str | None = None
    tracker: str | None = None
    # The tracker of every row that names none (``--tracker``): routing rules may ask for it.
    default_tracker: str | None = None


# Where each format keeps the repository or project a ticket was filed in, if it does.
_REPOSITORY: dict[InputFormat, str] = {"jsonl": "repository", "csv": "repository", "jira-csv": "Project key"}

# Where each format keeps the ticket's author (gh's is an object with a login).
_AUTHOR: dict[InputFormat, str] = {
    "jsonl": "author",
    "csv": "author",
    "gh-json": "author",
    "gitlab-csv": "Author Username",
    "jira-csv": "Reporter",
}

# The usual column names of each format (id, title, body, labels).
_DEFAULTS: dict[InputFormat, tuple[str, str, str, str]] = {
    "jsonl": ("id", "title", "body", "labels"),
    "csv": ("id", "title", "body", "labels"),
    "gh-json": ("number", "title", "body", "labels"),
    "gitlab-csv": ("Issue ID", "Title", "Description", "Labels"),
    "jira-csv": ("Issue key", "Summary", "Description", "Labels"),
}


BOM = "\ufeff"
_BOM_BYTES = BOM.encode("utf-8")


def check_text(head: bytes, source: str) -> None:
    """Refuse a file that is not UTF-8 text (a spreadsheet, an archive, UTF-16) before reading a row."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(f"{source}: the file is UTF-16 text; save it as UTF-8 (CSV UTF-8, or JSON) and try again")
    if b"\x00" in head:
        raise DataError(
            f"{source}: not a text file (it holds binary data: a spreadsheet or an archive?); export it as CSV"
            " or JSON Lines"
        )
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut by the end of the peek is not an error
            raise DataError(f"{source}: not UTF-8 text (byte {exc.start}); export it as UTF-8") from None


def detect_format(path: str | None, head: str) -> InputFormat:
    """The input format from the file name, else from the first line of the content."""
    name = (path or "").lower()
    head = head.removeprefix(BOM)
    stripped = head.lstrip()
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json") or stripped.startswith("["):
        return "gh-json"
    if name.endswith(".csv") or not stripped.startswith("{"):
        header = next(csv.reader([head.splitlines()[0] if head else ""]), [])
        names = {h.strip() for h in header}
        if {"Issue key", "Summary"} <= names:
            return "jira-csv"
        if {"Title", "Description"} <= names and ({"Issue ID", "IID"} & names):
            return "gitlab-csv"
        return "csv"
    return "jsonl"


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _label_names(value: Any) -> tuple[str, ...]:
    """Labels as names, from strings, comma-separated strings or objects with a name/title."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    names = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict):
            name = item.get("name") or item.get("title")
            if isinstance(name, str):
                names.append(name)
    return tuple(names)


def _row(number: int, record: dict[str, Any], fmt: InputFormat, columns: Columns) -> Row:
    """A Row from one decoded record (a JSON object or a CSV row as a dict)."""
    id_key, title_key, body_key, labels_key = _DEFAULTS[fmt]
    ident = _text(record.get(columns.id or id_key))
    team = _text(record.get(columns.team or "team")) or None
    labels = _label_names(record.get(columns.labels or labels_key))
    if fmt == "jira-csv" and not columns.labels:
        # Jira repeats the Labels column once per label.
        labels = tuple(v for k, v in record.items() if k == "Labels" or k.startswith("Labels."))
        labels = tuple(label for label in labels if label)
    if columns.text is not None:
        if columns.text not in record:
            return Row(number, ident, None, None, team, labels, f"no {columns.text!r} column")
        title, body = _text(record.get(columns.text)), None
    else:
        title_name, body_name = columns.title or title_key, columns.body or body_key
        if title_name not in record and body_name not in record and "text" not in record:
            return Row(number, ident, None, None, team, labels, f"no {title_name!r} or {body_name!r} column")
        title, body = _text(record.get(title_name)), _text(record.get(body_name))
        if title is None and body is None:
            title = _text(record.get("text"))
    if not ((title or "").strip() or (body or "").strip()):
        return Row(number, ident, title, body, team, labels, "empty text: no title, body or text")
    place = columns.repository or _REPOSITORY.get(fmt)
    repository = (_text(record.get(place)) if place else None) or columns.default_repository
    author = record.get(columns.author or _AUTHOR[fmt])
    if isinstance(author, dict):
        author = author.get("login") or author.get("username") or author.get("name")
    tracker = _text(record.get(columns.tracker or "tracker")) or columns.default_tracker
    return Row(
        number, ident, title, body, team, labels, None, repository or None, _text(author) or None, tracker or None
    )


_object = msgspec.json.Decoder(dict[str, Any])


def _read_jsonl(stream: IO[bytes], columns: Columns) -> Iterator[Row]:
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            raw = raw.removeprefix(_BOM_BYTES)
        if not raw.strip():
            continue
        try:
            record = _object.decode(raw)
        except msgspec.DecodeError as exc:
            yield Row(number, None, None, None, error=f"not a JSON object: {exc}")
            continue
        except (UnicodeDecodeError, RecursionError):
            yield Row(number, None, None, None, error="unreadable line (not UTF-8, or nested too deeply)")
            continue
        yield _row(number, record, "jsonl", columns)


def _read_json_array(stream: IO[bytes], columns: Columns) -> Iterator[Row]:
    # `gh issue list --json` prints one JSON array; it is read whole (gh returns at most a few thousand).
    try:
        records = msgspec.json.decode(stream.read().removeprefix(_BOM_BYTES))
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        yield Row(1, None, None, None, error=f"not a JSON array: {exc}")
        return
    if not isinstance(records, list):
        yield Row(1, None, None, None, error="not a JSON array of issues")
        return
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            yield Row(number, None, None, None, error="not a JSON object")
            continue
        yield _row(number, record, "gh-json", columns)


def _read_csv(stream: IO[bytes], fmt: InputFormat, columns: Columns, source: str, warn: Warn) -> Iterator[Row]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataError(f"{source}:1: unreadable CSV header ({exc})") from None
    # Repeated column names (Jira's Labels) are numbered: Labels, Labels.1, ...
    seen: Counter[str] = Counter()
    names = []
    for name in (h.strip() for h in header):
        names.append(name if not seen[name] else f"{name}.{seen[name]}")
        seen[name] += 1
    _check_header(names, fmt, columns, source, warn)
    number = 1
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # Bad quoting swallows the rows after it: refuse the file rather than label merged rows.
            raise DataError(
                f"{source}:{start}: malformed CSV in the record starting on line {start} ({exc});"
                " a quote inside a field must be doubled, and a quoted field closed"
            ) from None
        number += 1
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(names):
            yield Row(start, None, None, None, error=f"{len(values)} fields where the header has {len(names)}")
            continue
        yield _row(start, dict(zip(names, values, strict=False)), fmt, columns)


def _check_header(names: list[str], fmt: InputFormat, columns: Columns, source: str, warn: Warn) -> None:
    """Refuse a header without any column the ticket's text could come from, before any row is read."""
    _, title_key, body_key, _ = _DEFAULTS[fmt]
    found = ", ".join(repr(n) for n in names)
    if columns.text is not None:
        if columns.text not in names:
            raise DataError(f"{source}:1: no {columns.text!r} column (--text-column); the header has {found}")
        return
    title, body = columns.title or title_key, columns.body or body_key
    present = [name for name in (title, body, "text") if name in names]
    if not present:
        raise DataError(
            f"{source}:1: no {title!r} or {body!r} column for the ticket's text (format {fmt}); the header has"
            f" {found}: name yours with --title-column and --body-column (or --text-column)"
        )
    for name, flag in ((title, "--title-column"), (body, "--body-column")):
        if name not in names and "text" not in names:
            warn(f"{source}: no {name!r} column (format {fmt}): tickets are read without it; see {flag}")


def read_rows(
    stream: IO[bytes],
    fmt: InputFormat,
    columns: Columns | None = None,
    source: str = "<input>",
    warn: Warn | None = None,
) -> Iterator[Row]:
    """Rows of ``stream`` in order; unreadable records become rows with an error.

    A CSV whose header has no column for the text, or whose quoting is broken, raises
    ``DataError`` naming ``source`` and the line; ``warn`` hears of a usual column that is missing.
    """
    columns = columns or Columns()
    if fmt == "jsonl":
        return _read_jsonl(stream, columns)
    if fmt == "gh-json":
        return _read_json_array(stream, columns)
    return _read_csv(stream, fmt, columns, source, warn or _ignore)


def _ignore(message: str) -> None:
    return None


# -- summary and agreement ---------------------------------------------------------------------


class AgreementReport(msgspec.Struct, frozen=True):
    """How the router's teams agree with the teams the backlog already carried."""

    compared: int
    accuracy: float
    macro_f1: float
    labels: list[str]
    confusion: list[list[int]]


@dataclass
class Agreement:
    """Accumulates agreement with existing labels without keeping the rows."""

    taxonomy: Taxonomy
    confusion: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        k = len(self.taxonomy.ids)
        self.confusion = np.zeros((k, k), dtype=np.int64)

    def truth(self, row: Row) -> str | None:
        """The team a row says it belongs to: a team column, else a team label of any tracker."""
        if row.team in self.taxonomy.ids:
            return row.team
        names = trackers.names()
        for label in row.labels:
            team = self.taxonomy.team_for_any_label(label, names)
            if team is not None:
                return team
        return None

    def add(self, item: Labelled[Row]) -> None:
        """Count one decided row if it carries a known team."""
        if item.decision is None:
            return
        team = self.truth(item.row)
        if team is None or item.decision.team not in self.taxonomy.ids:
            return
        ids = self.taxonomy.ids
        self.confusion[ids.index(team), ids.index(item.decision.team)] += 1

    def report(self) -> AgreementReport:
        """Accuracy, macro-F1 (over teams present in the labels) and the confusion matrix."""
        scores = confusion_scores(self.taxonomy.ids, self.confusion)
        return AgreementReport(
            compared=scores.n,
            accuracy=scores.accuracy,
            macro_f1=scores.macro_f1,
            labels=list(self.taxonomy.ids),
            confusion=self.confusion.tolist(),
        )


class Summary(msgspec.Struct):
    """What a labelling run did: per team, abstained, errors, throughput (and agreement if compared)."""

    rows: int = 0
    decided: int = 0
    errors: int = 0
    abstained: int = 0
    written: int = 0
    per_team: dict[str, int] = {}
    seconds: float = 0.0
    rows_per_second: float = 0.0
    model_version: str = ""
    agreement: AgreementReport | None = None

    def add(self, item: Labelled[Row]) -> None:
        """Count one row."""
        self.rows += 1
        if item.decision is None:
            self.errors += 1
            return
        self.decided += 1
        self.per_team[item.decision.team] = self.per_team.get(item.decision.team, 0) + 1
        if item.decision.abstained:
            self.abstained += 1
