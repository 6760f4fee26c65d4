"""Commands that decide tickets: one at a time (classify) or a whole backlog (label)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec
from rich.table import Table

from service.backlog import Columns
from service.cli.columns import column_options
from service.cli.common import err, friendly, out, settings_of
from service.pointers import registry_for
from service.store import Store

__all__ = ["EXIT_ROWS_FAILED", "classify", "label"]


@click.command()
@click.argument("text", required=False)
@click.option("--title", help="The ticket's title (with --body instead of TEXT); '-' reads standard input.")
@click.option("--body", help="The ticket's body; '-' reads standard input.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision object as JSON.")
@click.pass_context
@friendly
def classify(ctx: click.Context, text: str | None, title: str | None, body: str | None, as_json: bool) -> None:
    """Classify one ticket with the active model ('-' reads the text from standard input)."""
    from model.rules import RuleFacts
    from model.text import compose
    from service.decisions import record_of
    from service.routing import rules_for
    from service.triage import triage_of

    if [text, title, body].count("-") > 1:
        raise click.UsageError("only one of TEXT, --title and --body can read standard input ('-')")
    if text == "-":
        text = sys.stdin.read()
    if title == "-":
        title = sys.stdin.read()
    if body == "-":
        body = sys.stdin.read()
    if text is not None and (title or body):
        raise click.UsageError("give TEXT, or --title/--body, not both")
    parts = (text, None) if text is not None else (title, body)
    if not any(p and p.strip() for p in parts):
        raise click.UsageError("nothing to classify: give TEXT or --title/--body")
    settings = settings_of(ctx)
    with Store.for_settings(settings) as store:
        loaded = registry_for(settings, store).load_active()
        decision = loaded.classifier(settings.max_text_chars, settings.abstain_threshold).decide(*parts)
        decision = rules_for(settings, loaded.manifest.teams).apply(decision, RuleFacts(title=parts[0]))
        record = record_of(decision, "cli", compose(*parts))
        row = triage_of(record.id, decision, "cli", *parts, settings.triage_margin, record.created_at)
        store.audit.add([record], [row] if row is not None else [])
    if as_json:
        click.echo(msgspec.json.encode(decision).decode())
        return
    verdict = "abstained (route to triage)" if decision.abstained else "routed"
    if decision.rule is not None:
        verdict = f"{'skipped' if decision.skipped else 'routed'} by rule {decision.rule!r}"
    out.print(f"[bold]{decision.team}[/bold] {decision.confidence:.2f} - {verdict}; model {decision.model_version}")
    table = Table()
    table.add_column("team")
    table.add_column("score", justify="right")
    for team, score in sorted(decision.scores.items(), key=lambda kv: -kv[1]):
        table.add_row(team, f"{score:.3f}")
    out.print(table)
    if decision.explanation:
        out.print("because of: " + ", ".join(f"{t.term} ({t.weight:+.2f})" for t in decision.explanation))


# -- label ---------------------------------------------------------------------------------

EXIT_ROWS_FAILED = 3


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Where to write the decisions ('-' for standard output).",
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "csv", "gh-json", "gitlab-csv", "jira-csv"]),
    help="Input format [default: from the extension and the header].",
)
@click.option(
    "--output-format",
    type=click.Choice(["jsonl", "csv"]),
    help="Output format [default: from OUTPUT's extension, else jsonl].",
)
@column_options(
    team_help="Column holding a known team (for --compare) [default: team].",
    labels_help="Column holding tracker labels (for --compare).",
    rules=True,
)
@click.option("--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes.")
@click.option(
    "--chunk-size",
    type=click.IntRange(1, 100_000),
    default=2000,
    show_default=True,
    help="Rows decided together (and handed to a worker process at a time).",
)
@click.option("--only-abstained", is_flag=True, help="Write only the tickets the router would send to triage.")
@click.option("--min-confidence", type=click.FloatRange(0, 1), help="Write only decisions at least this confident.")
@click.option("--compare", is_flag=True, help="Report agreement with the teams the backlog already carries.")
@click.option(
    "--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write the summary as JSON."
)
@click.option(
    "--confusion",
    "confusion_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --compare: draw the confusion matrix as a PNG here [default: beside --report].",
)
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.pass_context
@friendly
def label(
    ctx: click.Context,
    input_path: Path,
    output_path: Path,
    input_format: str | None,
    output_format: str | None,
    columns: Columns,
    jobs: int,
    chunk_size: int,
    only_abstained: bool,
    min_confidence: float | None,
    compare: bool,
    report_path: Path | None,
    confusion_path: Path | None,
    quiet: bool,
) -> None:
    """Label a backlog: decide every ticket of INPUT and write the decisions to OUTPUT.

    Reads JSON Lines, CSV, `gh issue list --json number,title,body,labels` output, and GitLab
    and Jira CSV exports (UTF-8, with or without a byte-order mark); '-' reads standard input.
    OUTPUT's extension (.jsonl, .ndjson or .csv) chooses its format. A row that cannot be read or
    decided is written with an `error` and counted; the exit code is 3 when any row failed, 1
    when the input cannot be used at all (not text, no column for the text, broken CSV quoting).
    The output file appears only when the run completes. Offline labelling does not write the
    audit trail.
    """
    from service.labelling import LabelJob, run_label_job

    job = LabelJob(
        input_path=None if str(input_path) == "-" else input_path,
        output_path=None if str(output_path) == "-" else output_path,
        input_format=input_format,
        output_format=output_format,
        columns=columns,
        jobs=jobs,
        chunk_size=chunk_size,
        only_abstained=only_abstained,
        min_confidence=min_confidence,
        compare=compare,
        report_path=report_path,
        confusion_path=confusion_path,
        progress=not quiet and err.is_terminal,
        summary=not quiet,
    )
    summary = run_label_job(settings_of(ctx), job, err)
    if summary.errors:
        ctx.exit(EXIT_ROWS_FAILED)
