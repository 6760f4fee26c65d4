"""``ticket-router models``: list, inspect, activate and roll back model versions."""

from __future__ import annotations

import click
import msgspec
from rich.table import Table

from service.cli.common import friendly, out, settings_of
from service.pointers import registry_for
from service.store import Store

__all__ = ["models"]


@click.group()
def models() -> None:
    """List, inspect, activate and roll back model versions."""


@models.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@friendly
def models_list(ctx: click.Context, as_json: bool) -> None:
    """Stored versions, newest first."""
    with Store.for_settings(settings_of(ctx)) as store:
        registry = registry_for(settings_of(ctx), store)
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
        # A version is copied from here: never cut or wrapped, whatever the terminal's width.
        table.add_column(
            column, no_wrap=column in {"", "version"}, overflow="fold", min_width=26 if column == "version" else None
        )
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
@friendly
def models_show(ctx: click.Context, version: str) -> None:
    """Print a version's manifest as JSON."""
    with Store.for_settings(settings_of(ctx)) as store:
        manifest = registry_for(settings_of(ctx), store).manifest(version)
    click.echo(msgspec.json.format(msgspec.json.encode(manifest)).decode())


@models.command("activate")
@click.argument("version")
@click.option("--force", is_flag=True, help="Activate even if the promotion gate refuses.")
@click.pass_context
@friendly
def models_activate(ctx: click.Context, version: str, force: bool) -> None:
    """Make VERSION the active model if the gate lets it (running services pick it up within seconds)."""
    from service.trainer import promote

    with Store.for_settings(settings_of(ctx)) as store:
        event = promote(settings_of(ctx), store, version, force=force)
    out.print(f"active: {event.version} (was {event.previous or 'none'}); {event.reason}")


@models.command("rollback")
@click.pass_context
@friendly
def models_rollback(ctx: click.Context) -> None:
    """Return to the version that was active before the current one."""
    with Store.for_settings(settings_of(ctx)) as store:
        event = registry_for(settings_of(ctx), store).rollback()
    out.print(f"active: {event.version} (rolled back from {event.previous})")
