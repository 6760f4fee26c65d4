"""The ``label`` command's work: open the backlog, label it with the active model, write and summarise."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import msgspec
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from model.batch import Labelled, StoredClassifier, label_rows
from model.errors import DataError
from model.evaluation import plot_confusion
from model.files import atomic_output
from service.backlog import Agreement, Columns, InputFormat, Row, Summary, check_text, detect_format, read_rows
from service.backlog_output import output_format_for, write_csv, write_jsonl
from service.pointers import registry_for
from service.routing import rules_for
from service.settings import Settings
from service.store import Store

__all__ = ["LabelJob", "run_label_job"]


@dataclass(frozen=True)
class LabelJob:
    """What to label and how (None paths mean standard input or output)."""

    input_path: Path | None
    output_path: Path | None
    input_format: str | None
    output_format: str | None
    columns: Columns
    jobs: int = 1
    chunk_size: int = 2000
    only_abstained: bool = False
    min_confidence: float | None = None
    compare: bool = False
    report_path: Path | None = None
    confusion_path: Path | None = None
    progress: bool = False
    summary: bool = True


@contextlib.contextmanager
def _input(job: LabelJob) -> Iterator[IO[bytes]]:
    if job.input_path is None:
        stream = sys.stdin.buffer
        # The format is sniffed from a peek at the head; a stdin without peek gets a buffer that has one.
        yield stream if hasattr(stream, "peek") else io.BufferedReader(stream)  # type: ignore[type-var]
        return
    try:
        handle = job.input_path.open("rb")
    except OSError as exc:
        raise DataError(f"{job.input_path}: cannot read: {exc.strerror}") from None
    with handle:
        yield handle


@contextlib.contextmanager
def _output(job: LabelJob) -> Iterator[IO[bytes]]:
    if job.output_path is None:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    with atomic_output(job.output_path) as handle:
        yield handle


def _keep(item: Labelled[Row], job: LabelJob) -> bool:
    decision = item.decision
    if decision is None:
        return True  # errors are always written, so they can be seen and fixed
    if job.only_abstained and not decision.abstained:
        return False
    return job.min_confidence is None or decision.confidence >= job.min_confidence


def run_label_job(settings: Settings, job: LabelJob, console: Console) -> Summary:
    """Label the backlog; returns the summary (also printed, and written with ``report_path``)."""
    with Store.for_settings(settings) as store:
        registry = registry_for(settings, store)
        manifest = registry.load_active().manifest
    taxonomy = manifest.taxonomy
    rules = rules_for(settings, taxonomy.ids)
    factory = StoredClassifier(registry.root, manifest.version, settings.max_text_chars, settings.abstain_threshold)
    columns = job.columns
    try:
        output_format = output_format_for(job.output_path, job.output_format)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    summary = Summary(model_version=manifest.version)
    agreement = Agreement(taxonomy) if job.compare else None
    started = time.perf_counter()
    name = str(job.input_path) if job.input_path is not None else "<stdin>"

    def warn(message: str) -> None:
        console.print(f"[yellow]warning:[/yellow] {message}")

    with _input(job) as source:
        head = _peek(source)
        check_text(head, name)
        fmt = cast(
            InputFormat, job.input_format or detect_format(str(job.input_path or ""), head.decode(errors="replace"))
        )
        rows = read_rows(source, fmt, columns, name, warn)
        total = job.input_path.stat().st_size if job.input_path is not None else None
        with _progress(job, total, console) as advance, _output(job) as out:
            labelled = label_rows(rows, factory, jobs=job.jobs, chunk_size=job.chunk_size, rules=rules)

            def counted() -> Iterator[Labelled[Row]]:
                for item in labelled:
                    summary.add(item)
                    if agreement is not None:
                        agreement.add(item)
                    if summary.rows % 1000 == 0:
                        advance(summary.rows, _position(source))
                    if _keep(item, job):
                        summary.written += 1
                        yield item
                advance(summary.rows, _position(source))

            if output_format == "csv":
                write_csv(counted(), out, taxonomy.ids)
            else:
                write_jsonl(counted(), out)
    summary.seconds = time.perf_counter() - started
    summary.rows_per_second = summary.rows / summary.seconds if summary.seconds else 0.0
    if agreement is not None:
        summary.agreement = agreement.report()
    if job.report_path is not None:
        job.report_path.parent.mkdir(parents=True, exist_ok=True)
        job.report_path.write_bytes(msgspec.json.format(msgspec.json.encode(summary)))
    picture = job.confusion_path or (job.report_path.with_suffix(".confusion.png") if job.report_path else None)
    if summary.agreement is not None and summary.agreement.compared and picture is not None:
        title = f"{name}: the router against the backlog's own teams"
        plot_confusion(summary.agreement, picture, title, ("the backlog's team", "the router's team"))
        console.print(f"wrote the confusion matrix to {picture}")
    if summary.rows == 0:
        warn(f"{name} holds no tickets (an empty file, or a header without rows): nothing was labelled")
    if job.summary:
        _print_summary(console, summary, fmt)
    return summary


def _peek(source: IO[bytes]) -> bytes:
    peek = getattr(source, "peek", None)
    data: bytes = peek(65536) if peek is not None else b""
    return data


def _position(source: IO[bytes]) -> int | None:
    try:
        return source.tell()
    except (OSError, ValueError):
        return None


Advance = Callable[[int, int | None], None]


@contextlib.contextmanager
def _progress(job: LabelJob, total: int | None, console: Console) -> Iterator[Advance]:
    """A progress bar on a terminal (rows, rows/s, and the share of the file read with its ETA)."""
    if not job.progress:

        def ignore(rows: int, position: int | None) -> None:
            return None

        yield ignore
        return
    columns = [
        TextColumn("[bold]labelling"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]:,.0f} rows/s"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if total is None:
        columns = [c for c in columns if not isinstance(c, (BarColumn, TimeRemainingColumn))]
    with Progress(*columns, console=console, transient=True, refresh_per_second=4) as progress:
        task = progress.add_task("label", total=total, rows=0, rate=0.0)
        started = time.perf_counter()

        def advance(rows: int, position: int | None) -> None:
            elapsed = time.perf_counter() - started
            progress.update(task, completed=position or 0, rows=rows, rate=rows / elapsed if elapsed else 0.0)

        yield advance


def _print_summary(console: Console, summary: Summary, fmt: str) -> None:
    table = Table(title=f"labelled {summary.rows:,} rows ({fmt}) with model {summary.model_version}")
    table.add_column("team")
    table.add_column("tickets", justify="right")
    table.add_column("share", justify="right")
    for team, count in sorted(summary.per_team.items(), key=lambda kv: -kv[1]):
        table.add_row(team, f"{count:,}", f"{count / summary.decided:.1%}" if summary.decided else "-")
    table.add_row(
        "abstained (to triage)",
        f"{summary.abstained:,}",
        f"{summary.abstained / summary.decided:.1%}" if summary.decided else "-",
    )
    table.add_row("errors", f"{summary.errors:,}", f"{summary.errors / summary.rows:.1%}" if summary.rows else "-")
    console.print(table)
    console.print(f"{summary.written:,} written in {summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)")
    if summary.agreement is not None:
        a = summary.agreement
        console.print(
            f"agreement with the backlog's own teams on {a.compared:,} tickets: accuracy {a.accuracy:.3f},"
            f" macro-F1 {a.macro_f1:.3f}"
        )
        confusion = Table(title="confusion (rows: the backlog's team, columns: the router's)")
        confusion.add_column("")
        for name in a.labels:
            confusion.add_column(name, justify="right")
        for name, row in zip(a.labels, a.confusion, strict=True):
            confusion.add_row(name, *(f"{v:,}" for v in row))
        console.print(confusion)
