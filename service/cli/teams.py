"""``ticket-router teams``: rename a team id, or merge one team into another, across the training data."""

from __future__ import annotations

import click
import msgspec

from model.renaming import TeamChange, merge_teams, rename_team
from service.cli.common import friendly, out, settings_of
from service.trackers import registry as trackers

__all__ = ["teams"]


@click.group()
def teams() -> None:
    """Rename or merge teams in teams.toml and every labelled example at once."""


_DRY_RUN = click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the change as JSON.")


@teams.command("rename")
@click.argument("old")
@click.argument("new")
@_DRY_RUN
@_JSON
@click.pass_context
@friendly
def teams_rename(ctx: click.Context, old: str, new: str, dry_run: bool, as_json: bool) -> None:
    """Rename team OLD to NEW in teams.toml and in the team (and alt) of every example."""
    root = settings_of(ctx).training_data
    _show(rename_team(root, old, new, dry_run=dry_run, trackers=trackers.names()), as_json)


@teams.command("merge")
@click.argument("old")
@click.argument("into")
@_DRY_RUN
@_JSON
@click.pass_context
@friendly
def teams_merge(ctx: click.Context, old: str, into: str, dry_run: bool, as_json: bool) -> None:
    """Merge team OLD into INTO: OLD's examples become INTO's, and OLD's table leaves teams.toml."""
    root = settings_of(ctx).training_data
    _show(merge_teams(root, old, into, dry_run=dry_run, trackers=trackers.names()), as_json)


def _show(change: TeamChange, as_json: bool) -> None:
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(change)).decode())
        return
    verb = {"rename": "renamed", "merge": "merged"}[change.action]
    head = f"{'would have ' if change.dry_run else ''}{verb} {change.old} -> {change.new}"
    out.print(f"{head}: {change.examples} example(s) relabelled in {len(change.files)} file(s)")
    for item in change.files:
        out.print(f"  {item.path}: {item.lines} line(s)")
    for note in change.notes:
        out.print(f"note: {note}")
    if not change.dry_run:
        out.print("next: `ticket-router validate`, then `ticket-router train`")
