"""The ``ticket-router`` command line: serve, train, evaluate, classify, validate and manage models."""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import msgspec
from rich.console import Console
from rich.table import Table

from model.errors import RouterError
from model.evaluation import Metrics
from model.registry import Manifest
from service.pointers import registry_for
from service.settings import PREFIX, Settings, SettingsError
from service.store import StoreError
from service.trainer import GateRefusedError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

# soft_wrap: a message is one line however narrow the console (logs and pipes get no hard breaks)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _friendly(func: F) -> F:
    """Turn the errors a user can cause into one clear line and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (RouterError, SettingsError, StoreError, GateRefusedError) as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def _settings(ctx: click.Context) -> Settings:
    settings: Settings = ctx.obj
    return settings


@click.group()
@click.option("--data-dir", type=click.Path(path_type=Path), help=f"Overrides {PREFIX}DATA_DIR.")
@click.option("--training-data", type=click.Path(path_type=Path), help=f"Overrides {PREFIX}TRAINING_DATA.")
@click.version_option("0.1.0", prog_name="ticket-router")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, training_data: Path | None) -> None:
    """Route engineering tickets to the team that owns them.

    Settings come from TICKET_ROUTER_* environment variables, exactly as for the service.
    """
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None
    changes: dict[str, Any] = {}
    if data_dir is not None:
        changes["data_dir"] = data_dir
    if training_data is not None:
        changes["training_data"] = training_data
    ctx.obj = dataclasses.replace(settings, **changes) if changes else settings


# -- serve ---------------------------------------------------------------------------------


@main.command()
@click.option("--host", help=f"Overrides {PREFIX}HOST.")
@click.option("--port", type=int, help=f"Overrides {PREFIX}PORT.")
@click.option("--workers", type=int, help=f"Overrides {PREFIX}WORKERS.")
@click.option("--fd", type=int, help="Accept on this already-bound socket (socket activation, shared ports).")
@click.pass_context
@_friendly
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None, fd: int | None) -> None:
    """Serve the HTTP API, training the default model first if the registry has none."""
    import uvicorn

    from service.logs import logging_config
    from service.trainer import ensure_active_model

    settings = _settings(ctx)
    settings = dataclasses.replace(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
    )
    trained = ensure_active_model(settings)
    if trained is not None:
        err.print(f"no active model: trained and activated {trained.version} from {settings.training_data}")
    # Worker processes build their settings from the environment: hand the overrides on.
    os.environ[PREFIX + "DATA_DIR"] = str(settings.data_dir)
    os.environ[PREFIX + "TRAINING_DATA"] = str(settings.training_data)
    if fd is not None:
        # Accepted connections inherit TCP_NODELAY from the listener; without it, responses
        # written in two parts wait for the client's delayed ACK (about 40 ms each).
        listener = socket.socket(fileno=fd)
        listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.detach()
    if settings.workers > 1:
        # prometheus-client aggregates the workers' metrics through files in this directory.
        metrics_dir = settings.data_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    uvicorn.run(
        "service.asgi:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        fd=fd,
        workers=settings.workers,
        log_config=logging_config(settings.log_level),
        access_log=False,  # the app writes its own access line, with the request id
        limit_concurrency=settings.max_concurrency,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        proxy_headers=True,
        timeout_keep_alive=5,
    )


@main.command()
@click.pass_context
@_friendly
def init(ctx: click.Context) -> None:
    """Prepare the data dir: migrate the database and train the default model if none is active.

    Safe to run again and from several places at once (replicas start after it in compose).
    """
    from service.trainer import ensure_active_model, open_store_context

    settings = _settings(ctx)
    with open_store_context(settings) as store:
        version = store.schema_version()
    trained = ensure_active_model(settings)
    if trained is None:
        out.print(f"ready: database schema {version}, a model is already active")
    else:
        out.print(f"ready: database schema {version}, trained and activated {trained.version}")


# -- train / evaluate / validate -----------------------------------------------------------


@main.command()
@click.option("--note", default="", help="A note stored with the version.")
@click.option("--activate/--no-activate", default=True, show_default=True, help="Activate if the gate passes.")
@click.option("--force", is_flag=True, help="Activate even if the promotion gate refuses.")
@click.option("--params", "params_json", help='Training parameters as JSON, e.g. \'{"pipeline": {"C": 3.0}}\'.')
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@click.pass_context
@_friendly
def train(ctx: click.Context, note: str, activate: bool, force: bool, params_json: str | None, as_json: bool) -> None:
    """Train a new version from the training data and stored corrections.

    It becomes active only if its cross-validated macro-F1 is not worse than the active
    model's on the same folds and its calibration error is within TICKET_ROUTER_MAX_ECE.
    """
    from model.training import TrainingParams
    from service.trainer import train_version

    settings = _settings(ctx)
    params = None
    if params_json:
        try:
            params = msgspec.json.decode(params_json, type=TrainingParams)
        except msgspec.DecodeError as exc:
            raise click.BadParameter(str(exc), param_hint="--params") from None
    outcome = train_version(settings, activate=activate, force=force, note=note, params=params)
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(outcome)).decode())
        return
    _print_training(registry_for(settings).manifest(outcome.version), outcome.reason)
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


@main.command()
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
@_friendly
def evaluate(
    ctx: click.Context, holdout: Path | None, model_version: str | None, folds: int, out_dir: Path | None
) -> None:
    """Cross-validate on the training examples and optionally test on a held-out file."""
    from service.evaluation import run_evaluation

    settings = _settings(ctx)
    target = out_dir or settings.data_dir / "reports"
    result = run_evaluation(settings, folds=folds, holdout=holdout, model_version=model_version, out_dir=target)
    if result.cv is not None:
        _print_metrics(result.cv, f"{result.folds}-fold cross-validation on {settings.training_data}")
        out.print(f"threshold for routed precision {settings.target_precision}: {result.threshold:.2f}")
    else:
        out.print("too few examples for cross-validation (each team needs two)")
    if result.holdout is not None:
        _print_metrics(result.holdout, f"held-out {holdout} (model {result.holdout_model})")
    for path in result.files:
        out.print(f"wrote {path}")


@main.command()
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.pass_context
@_friendly
def validate(ctx: click.Context, path: Path | None) -> None:
    """Check a training-data directory (teams.toml and examples) or one labelled JSONL file."""
    from model.dataset import example_files, load_examples, load_training_data
    from model.taxonomy import load_taxonomy

    settings = _settings(ctx)
    root = path or settings.training_data
    if root.is_file():
        taxonomy = load_taxonomy(settings.training_data)
        examples = load_examples(example_files(root), taxonomy)
        out.print(f"{root}: {len(examples)} valid examples")
        return
    data = load_training_data(root)
    counts = {team: sum(1 for e in data.examples if e.team == team) for team in data.taxonomy.ids}
    out.print(f"{root}: {len(data.taxonomy.teams)} teams, {len(data.examples)} valid examples {counts}")


# -- classify ------------------------------------------------------------------------------


@main.command()
@click.argument("text", required=False)
@click.option("--title", help="The ticket's title (with --body instead of TEXT).")
@click.option("--body", help="The ticket's body.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision object as JSON.")
@click.pass_context
@_friendly
def classify(ctx: click.Context, text: str | None, title: str | None, body: str | None, as_json: bool) -> None:
    """Classify one ticket with the active model ('-' reads the text from standard input)."""
    from model.text import compose
    from service.decisions import record_of
    from service.store import Store, database_url_for

    if text == "-":
        text = sys.stdin.read()
    if text is not None and (title or body):
        raise click.UsageError("give TEXT, or --title/--body, not both")
    parts = (text, None) if text is not None else (title, body)
    if not any(p and p.strip() for p in parts):
        raise click.UsageError("nothing to classify: give TEXT or --title/--body")
    settings = _settings(ctx)
    loaded = registry_for(settings).load_active()
    decision = loaded.classifier(settings.max_text_chars, settings.abstain_threshold).decide(*parts)
    store = Store.open(database_url_for(settings.database_url, settings.sqlite_path))
    try:
        store.add_decisions([record_of(decision, "cli", compose(*parts))])
    finally:
        store.close()
    if as_json:
        click.echo(msgspec.json.encode(decision).decode())
        return
    verdict = "abstained (route to triage)" if decision.abstained else "routed"
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


@main.command()
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
@click.option("--id-column", help="Column (or field) holding the ticket id.")
@click.option("--title-column", help="Column holding the title.")
@click.option("--body-column", help="Column holding the body.")
@click.option("--text-column", help="Column holding title and body together.")
@click.option("--team-column", help="Column holding a known team (for --compare) [default: team].")
@click.option("--labels-column", help="Column holding tracker labels (for --compare).")
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
@click.option("--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.pass_context
@_friendly
def label(
    ctx: click.Context,
    input_path: Path,
    output_path: Path,
    input_format: str | None,
    output_format: str | None,
    id_column: str | None,
    title_column: str | None,
    body_column: str | None,
    text_column: str | None,
    team_column: str | None,
    labels_column: str | None,
    jobs: int,
    chunk_size: int,
    only_abstained: bool,
    min_confidence: float | None,
    compare: bool,
    report_path: Path | None,
    quiet: bool,
) -> None:
    """Label a backlog: decide every ticket of INPUT and write the decisions to OUTPUT.

    Reads JSON Lines, CSV, `gh issue list --json number,title,body,labels` output, and GitLab
    and Jira CSV exports; '-' reads standard input. A row that cannot be read or decided is
    written with an `error` and counted; the exit code is 3 when any row failed. The output
    file appears only when the run completes. Offline labelling does not write the audit trail.
    """
    from service.labelling import LabelJob, run_label_job

    job = LabelJob(
        input_path=None if str(input_path) == "-" else input_path,
        output_path=None if str(output_path) == "-" else output_path,
        input_format=input_format,
        output_format=output_format,
        columns=(id_column, title_column, body_column, text_column, team_column, labels_column),
        jobs=jobs,
        chunk_size=chunk_size,
        only_abstained=only_abstained,
        min_confidence=min_confidence,
        compare=compare,
        report_path=report_path,
        progress=not quiet and err.is_terminal,
        summary=not quiet,
    )
    summary = run_label_job(_settings(ctx), job, err)
    if summary.errors:
        ctx.exit(EXIT_ROWS_FAILED)


# -- models --------------------------------------------------------------------------------


@main.group()
def models() -> None:
    """List, inspect, activate and roll back model versions."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_friendly
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Stored versions, newest first."""
    registry = registry_for(_settings(ctx))
    manifests = registry.list()
    active = registry.active_version()
    if as_json:
        rows = [
            {
                "version": m.version,
                "active": m.version == active,
                "created_at": m.created_at,
                "macro_f1": m.report.cv.macro_f1 if m.report.cv else None,
                "note": m.note,
            }
            for m in manifests
        ]
        click.echo(msgspec.json.encode(rows).decode())
        return
    table = Table()
    for column in ("", "version", "created", "examples", "macro-F1", "ECE", "threshold", "note"):
        table.add_column(column)
    for m in manifests:
        cv = m.report.cv
        table.add_row(
            "*" if m.version == active else "",
            m.version,
            m.created_at,
            str(m.report.n_examples),
            f"{cv.macro_f1:.3f}" if cv else "-",
            f"{cv.ece:.3f}" if cv else "-",
            f"{m.threshold:.2f}",
            m.note,
        )
    out.print(table if manifests else "no model versions yet: run `ticket-router train`")


@models.command("show")
@click.argument("version")
@click.pass_context
@_friendly
def models_show(ctx: click.Context, version: str) -> None:
    """Print a version's manifest as JSON."""
    manifest = registry_for(_settings(ctx)).manifest(version)
    click.echo(msgspec.json.format(msgspec.json.encode(manifest)).decode())


@models.command("activate")
@click.argument("version")
@click.option("--force", is_flag=True, help="Activate even if the promotion gate refuses.")
@click.pass_context
@_friendly
def models_activate(ctx: click.Context, version: str, force: bool) -> None:
    """Make VERSION the active model if the gate lets it (running services pick it up within seconds)."""
    from service.trainer import promote

    event = promote(_settings(ctx), version, force=force)
    out.print(f"active: {event.version} (was {event.previous or 'none'}); {event.reason}")


@models.command("rollback")
@click.pass_context
@_friendly
def models_rollback(ctx: click.Context) -> None:
    """Return to the version that was active before the current one."""
    event = registry_for(_settings(ctx)).rollback()
    out.print(f"active: {event.version} (rolled back from {event.previous})")


if __name__ == "__main__":
    main()
