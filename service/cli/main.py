"""The ``ticket-router`` command line: serve, train, evaluate, classify, label, validate and manage models."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import click

from service.cli.common import err, friendly, out, settings_of, step_printer
from service.cli.decide import classify, label
from service.cli.models import models
from service.cli.rules import rules
from service.cli.teams import teams
from service.cli.training import evaluate, import_history, train, validate
from service.settings import PREFIX, Settings, SettingsError
from service.store import Store

__all__ = ["main"]


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


@main.command()
@click.option("--host", help=f"Overrides {PREFIX}HOST.")
@click.option("--port", type=int, help=f"Overrides {PREFIX}PORT.")
@click.option("--workers", type=int, help=f"Overrides {PREFIX}WORKERS.")
@click.pass_context
@friendly
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API, training the default model first if the registry has none.

    Several ``serve`` processes may listen on the same port (the kernel spreads connections).
    """
    from service.server import run_server
    from service.trainer import ensure_active_model

    settings = settings_of(ctx)
    settings = dataclasses.replace(
        settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
    )
    headline = f"no active model in {settings.registry_dir}: training the default model from {settings.training_data}"
    trained = ensure_active_model(settings, step_printer(err, headline))
    if trained is not None:
        err.print(f"trained and activated {trained.version} in {trained.seconds:.1f} s")
    from service.routing import rules_for

    rules_for(settings)  # a bad rules file stops here, with the rule named, before any worker starts
    # Worker processes build their settings from the environment: hand the overrides on.
    os.environ[PREFIX + "DATA_DIR"] = str(settings.data_dir)
    os.environ[PREFIX + "TRAINING_DATA"] = str(settings.training_data)
    run_server(settings)


@main.command()
@click.pass_context
@friendly
def init(ctx: click.Context) -> None:
    """Prepare the data dir: migrate the database and train the default model if none is active.

    Safe to run again and from several places at once (replicas start after it in compose).
    """
    from service.trainer import ensure_active_model

    settings = settings_of(ctx)
    with Store.for_settings(settings) as store:
        version = store.schema_version()
    headline = f"no active model in {settings.registry_dir}: training the default model from {settings.training_data}"
    trained = ensure_active_model(settings, step_printer(err, headline))
    if trained is None:
        out.print(f"ready: database schema {version}, a model is already active")
    else:
        out.print(f"ready: database schema {version}, trained and activated {trained.version}")


for command in (train, evaluate, validate, import_history, classify, label, models, rules, teams):
    main.add_command(command)
