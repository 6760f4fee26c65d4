"""The ``ticket-router`` command line: serve, train, evaluate, classify, label, validate and manage models."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import click

from service.cli.common import err, friendly, out, settings_of, step_printer
from service.cli.decide import classify, label
from service.cli.models import models
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
@click.option("--fd", type=int, help="Accept on this already-bound socket (socket activation, shared ports).")
@click.pass_context
@friendly
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None, fd: int | None) -> None:
    """Serve the HTTP API, training the default model first if the registry has none."""
    import uvicorn

    from service.logs import logging_config
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


for command in (train, evaluate, validate, import_history, classify, label, models, teams):
    main.add_command(command)
