"""Commands that make and measure models: train, evaluate, validate the training data, import history."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click
import msgspec
from rich.table import Table

from model.evaluation import Metrics, TeamThreshold
from model.registry import Manifest
from service.backlog import Columns
from service.cli.columns import column_options
from service.cli.common import err, friendly, out, settings_of, step_printer
from service.pointers import registry_for
from service.store import Store
from service.trackers import registry as trackers

__all__ = ["evaluate", "import_history", "train", "validate"]


@click.command()
@click.option("--note", default="", help="A note stored with the version.")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Activate if the gate passes.")
@click.option("--force", is_flag=True, help="Activate even if the promotion gate refuses.")
@click.option("--params", "params_json", help='Training parameters as JSON, e.g. \'{"pipeline": {"C": 3.0}}\'.')
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@friendly
def train(ctx: click.Context, note: str, activate: bool, force: bool, params_json: str | None, as_json: bool) -> None:
    """Train a new version from the training data and stored corrections.

    It becomes active only if its cross-validated macro-F1 is not worse than the active
    model's on the same folds and its calibration error is within TICKET_ROUTER_MAX_ECE.
    """
    from model.training import TrainingParams
    from service.trainer import train_version

    settings = settings_of(ctx)
    params = None
    if params_json:
        try:
            params = msgspec.json.decode(params_json, type=TrainingParams)
        except msgspec.DecodeError as exc:
            raise click.BadParameter(str(exc), param_hint="--params") from None
    progress = None if as_json else step_printer(err, f"training from {settings.training_data} and stored corrections")
    with Store.for_settings(settings) as store:
        outcome = train_version(
            settings, activate=activate, force=force, note=note, params=params, store=store, progress=progress
        )
        manifest = registry_for(settings, store).manifest(outcome.version)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(outcome)).decode())
        return
    _print_training(manifest, outcome.reason)
    change = outcome.taxonomy_change
    if change is not None and change.changed:
        out.print(
            f"taxonomy changed: added {change.added or '-'}, removed {change.removed or '-'},"
            f" renamed {change.renamed or '-'}, redescribed {change.redescribed or '-'}"
        )
    if outcome.cold_start_teams:
        out.print(f"trained from descriptions alone (no examples yet): {', '.join(outcome.cold_start_teams)}")
    out.print(f"corrections used {outcome.corrections_used}, dropped (team removed) {outcome.corrections_dropped}")


def _print_training(manifest: Manifest, verdict: str) -> None:
    report = manifest.report
    table = Table(title=f"model {manifest.version}: {verdict}")
    table.add_column("team")
    table.add_column("examples", justify="right")
    for team, count in report.examples_per_team.items():
        table.add_row(team, str(count) + ("  (descriptions only)" if count == 0 else ""))
    out.print(table)
    if report.cv is not None:
        _print_metrics(report.cv, f"{report.folds}-fold cross-validation")
    out.print(
        f"temperature {report.temperature:.3f}; abstain below {manifest.threshold:.2f} ({report.threshold_source});"
        f" trained in {report.seconds:.1f}s"
    )
    _print_team_thresholds(report.team_routing)
    if manifest.gate is not None:
        out.print(f"promotion gate: {'passed' if manifest.gate.passed else 'refused'} - {manifest.gate.reason}")


def _print_metrics(metrics: Metrics, title: str) -> None:
    out.print(
        f"[bold]{title}[/bold]: {metrics.n} tickets, accuracy {metrics.accuracy:.3f},"
        f" macro-F1 {metrics.macro_f1:.3f}, calibration error (ECE, 10 bins) {metrics.ece:.3f}"
    )
    per_team = Table()
    for column in ("team", "precision", "recall", "F1", "support"):
        per_team.add_column(column, justify="left" if column == "team" else "right")
    for team, s in metrics.per_team.items():
        per_team.add_row(team, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support))
    out.print(per_team)
    confusion = Table(title="confusion (rows: true, columns: predicted)")
    confusion.add_column("")
    for label in metrics.labels:
        confusion.add_column(label, justify="right")
    for label, row in zip(metrics.labels, metrics.confusion, strict=True):
        confusion.add_row(label, *(str(v) for v in row))
    out.print(confusion)
    thresholds = Table(title="abstain thresholds")
    for column in ("threshold", "routed", "precision of routed", "abstained"):
        thresholds.add_column(column, justify="right")
    for step in metrics.thresholds:
        precision = "-" if step.precision is None else f"{step.precision:.3f}"
        thresholds.add_row(f"{step.threshold:.2f}", f"{step.routed:.3f}", precision, f"{step.abstained:.3f}")
    out.print(thresholds)


def _print_team_thresholds(rows: dict[str, TeamThreshold]) -> None:
    if not rows:
        return
    table = Table(title="abstain threshold per team (chosen for each team's precision target)")
    for column in ("team", "target", "threshold", "decisions", "routed", "precision of routed"):
        table.add_column(column, justify="left" if column == "team" else "right")
    for team, row in rows.items():
        routed = "-" if row.routed is None else f"{row.routed:.3f}"
        precision = "- (too few: global threshold)" if row.precision is None else f"{row.precision:.3f}"
        table.add_row(team, f"{row.target:g}", f"{row.threshold:.2f}", str(row.decisions), routed, precision)
    out.print(table)


@click.command()
@click.option(
    "--holdout", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Labelled JSONL to test on."
)
@click.option(
    "--model", "model_version", help="Test a stored version (or 'active') on the holdout instead of a fresh model."
)
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write report.json and confusion PNGs [default: <data dir>/reports].",
)
@click.pass_context
@friendly
def evaluate(
    ctx: click.Context, holdout: Path | None, model_version: str | None, folds: int, out_dir: Path | None
) -> None:
    """Cross-validate on the training examples and optionally test on a held-out file."""
    from service.evaluation import run_evaluation

    settings = settings_of(ctx)
    target = out_dir or settings.data_dir / "reports"
    result = run_evaluation(settings, folds=folds, holdout=holdout, model_version=model_version, out_dir=target)
    if result.cv is not None:
        _print_metrics(result.cv, f"{result.folds}-fold cross-validation on {settings.training_data}")
        out.print(f"threshold for routed precision {settings.target_precision}: {result.threshold:.2f}")
        _print_team_thresholds(result.team_thresholds)
    else:
        out.print("too few examples for cross-validation (each team needs two)")
    if result.holdout is not None:
        _print_metrics(result.holdout, f"held-out {holdout} (model {result.holdout_model})")
    for path in result.files:
        out.print(f"wrote {path}")


@click.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.pass_context
@friendly
def validate(ctx: click.Context, path: Path | None) -> None:
    """Check a training-data directory (teams.toml and examples) or one labelled JSONL file."""
    from model.dataset import example_files, load_examples, load_training_data
    from model.taxonomy import load_taxonomy

    settings = settings_of(ctx)
    root = path or settings.training_data
    if root.is_file():
        taxonomy = load_taxonomy(settings.training_data, trackers.names())
        examples = load_examples(example_files(root), taxonomy)
        out.print(f"{root}: {len(examples)} valid examples")
        return
    data = load_training_data(root, trackers.names())
    counts = {team: sum(1 for e in data.examples if e.team == team) for team in data.taxonomy.ids}
    out.print(f"{root}: {len(data.taxonomy.teams)} teams, {len(data.examples)} valid examples {counts}")
    from service.routing import rules_for

    ruleset = rules_for(settings, data.taxonomy.ids)
    where = settings.rules_path
    out.print(f"{where}: {len(ruleset)} valid rules" if where.exists() else f"{where}: no rules file (no rules)")


@click.command("import")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The examples file to add to [default: <training data>/examples/imported-<INPUT name>.jsonl].",
)
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "csv", "gh-json", "gitlab-csv", "jira-csv"]),
    help="Input format [default: from the extension and the header].",
)
@column_options(
    team_help="Column holding the team id [default: team].",
    labels_help="Column holding tracker labels (teams.toml maps them to teams).",
)
@click.option("--source", help="The examples' source tag [default: import:<INPUT name>].")
@click.option("--dry-run", is_flag=True, help="Report what would be imported; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
@friendly
def import_history(
    ctx: click.Context,
    input_path: Path,
    output_path: Path | None,
    input_format: str | None,
    columns: Columns,
    source: str | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Turn a labelled tracker export (your team labels, or a team column) into training examples.

    Reads gh JSON (`gh issue list --state all --json number,title,body,labels`), GitLab and Jira
    CSV exports, CSV and JSON Lines. A ticket's team is its team column, else its team label as
    teams.toml names it for any tracker. Tickets without one team, empty ones and tickets
    already among the examples are left out and counted. Then run `ticket-router train`.
    """
    from model.taxonomy import load_taxonomy
    from service.backlog import InputFormat
    from service.importer import ImportJob, run_import

    settings = settings_of(ctx)
    examples = settings.training_data / "examples"
    job = ImportJob(
        input_path=input_path,
        output_path=output_path or examples / f"imported-{input_path.stem}.jsonl",
        input_format=cast(InputFormat | None, input_format),
        columns=columns,
        source=source,
        dry_run=dry_run,
    )
    report = run_import(job, load_taxonomy(settings.training_data, trackers.names()), examples)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(report)).decode())
        return
    verb = "would add" if dry_run else "added"
    out.print(
        f"{report.input} ({report.format}): {report.rows} tickets read; {verb} {report.kept_total} to {report.output}"
    )
    table = Table()
    table.add_column("")
    table.add_column("tickets", justify="right")
    for team, count in report.kept.items():
        table.add_row(f"kept: {team}", str(count))
    for reason, count in report.skipped.items():
        table.add_row(f"left out: {reason}", str(count))
    out.print(table)
    for line in report.examples:
        out.print(f"  {line}")
    for warning in report.warnings:
        out.print(f"warning: {warning}")
    if report.kept_total and not dry_run:
        out.print("next: `ticket-router validate`, then `ticket-router train` to learn from them")
