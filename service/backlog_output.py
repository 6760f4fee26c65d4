"""Writing a labelled backlog: one decision a ticket, beside the input's line, id and title."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from model.batch import Labelled
from service.backlog import Row

__all__ = ["OUTPUT_FORMATS", "output_format_for", "write_csv", "write_jsonl"]

# Output formats by file extension; anything else must be named with --output-format.
OUTPUT_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


def output_format_for(path: Path | None, chosen: str | None) -> str:
    """The output format: the one chosen, else the one of ``path``'s extension (standard output: jsonl).

    ``ValueError`` for an extension that names no format we write (``.xlsx``, ``.json``...).
    """
    if chosen is not None:
        return chosen
    if path is None:
        return "jsonl"
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(OUTPUT_FORMATS)
        raise ValueError(
            f"cannot tell the output format from {path.name!r}: name the file {known},"
            " or choose with --output-format jsonl|csv"
        )
    return fmt


_encoder = msgspec.json.Encoder()


def _record(item: Labelled[Row]) -> dict[str, Any]:
    record: dict[str, Any] = {"line": item.row.line}
    if item.row.id is not None:
        record["id"] = item.row.id
    if item.row.title:
        record["title"] = item.row.title
    if item.decision is None:
        record["error"] = item.row.error
        return record
    decision = msgspec.structs.replace(item.decision, id=None)
    record.update(msgspec.to_builtins(decision))
    return record


def write_jsonl(items: Iterable[Labelled[Row]], out: IO[bytes]) -> None:
    """One JSON object a line: ``line``, the input's ``id`` and ``title``, then the decision fields (or ``error``)."""
    for item in items:
        out.write(_encoder.encode(_record(item)) + b"\n")


def write_csv(items: Iterable[Labelled[Row]], out: IO[bytes], teams: Sequence[str]) -> None:
    """A header, then one row a ticket: its line, id and title, the decision with a ``score_<team>`` column per team."""
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(
        [
            "line",
            "id",
            "title",
            "team",
            "confidence",
            "abstained",
            *[f"score_{t}" for t in teams],
            "explanation",
            "model_version",
            "truncated",
            "error",
        ]
    )
    for item in items:
        row, decision = item.row, item.decision
        if decision is None:
            writer.writerow(
                [row.line, row.id or "", row.title or "", "", "", "", *[""] * len(teams), "", "", "", row.error]
            )
            continue
        writer.writerow(
            [
                row.line,
                row.id or "",
                row.title or "",
                decision.team,
                f"{decision.confidence:.6f}",
                "true" if decision.abstained else "false",
                *[f"{decision.scores.get(t, 0.0):.6f}" for t in teams],
                "; ".join(f"{t.term}:{t.weight}" for t in decision.explanation),
                decision.model_version,
                "true" if decision.truncated else "false",
                "",
            ]
        )
    text.flush()
    text.detach()
