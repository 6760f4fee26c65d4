"""``ticket-router rules``: try the routing rules on a file of tickets before they route anything."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import cast

import click
import msgspec
from rich.table import Table

from service.cli.common import friendly, out, settings_of

__all__ = ["rules"]


@click.group()
def rules() -> None:
    """Routing rules (TICKET_ROUTER_RULES, default rules.toml beside teams.toml)."""


@rules.command("test")
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "input_format",
    type=click.Choice(["jsonl", "csv", "gh-json", "gitlab-csv", "jira-csv"]),
    help="Input format [default: from the extension and the header].",
)
@click.option("--tracker", help="The tracker of every ticket that names none (for rules with `tracker`).")
@click.option("--repository", "default_repository", help="The repository of every ticket that names none.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a ticket instead of a table.")
@click.pass_context
@friendly
def test_rules(
    ctx: click.Context,
    input_path: Path,
    input_format: str | None,
    tracker: str | None,
    default_repository: str | None,
    as_json: bool,
) -> None:
    """Show which rule, if any, each ticket of INPUT hits (no model is needed).

    INPUT is read like `label` reads a backlog: JSON Lines or CSV with title, body, author, labels,
    repository and tracker, gh JSON, GitLab and Jira CSV exports.
    """
    from model.batch import facts_of_row
    from service.backlog import Columns, InputFormat, detect_format, read_rows
    from service.routing import rules_for

    settings = settings_of(ctx)
    ruleset = rules_for(settings)
    if not len(ruleset):
        out.print(f"no rules: {settings.rules_path} does not exist")
    columns = Columns(default_tracker=tracker, default_repository=default_repository)
    with input_path.open("rb") as handle:
        head = handle.read(65536).decode("utf-8", errors="replace")
        handle.seek(0)
        fmt = cast(InputFormat, input_format or detect_format(str(input_path), head))
        hits: Counter[str] = Counter()
        table = Table(title=f"{input_path} against {settings.rules_path}")
        for column in ("line", "id", "title", "rule", "outcome"):
            table.add_column(column)
        for row in read_rows(handle, fmt, columns):
            rule = None if row.error else ruleset.first_match(facts_of_row(row))
            outcome = "-" if rule is None else ("skip" if rule.skip else f"team {rule.team}")
            hits[rule.name if rule else "(none: the model decides)"] += 1
            if as_json:
                record = {"line": row.line, "id": row.id, "rule": rule.name if rule else None, "error": row.error}
                record["outcome"] = None if rule is None else ("skip" if rule.skip else rule.team)
                click.echo(msgspec.json.encode(record).decode())
            else:
                title = (row.title or "")[:60]
                table.add_row(str(row.line), row.id or "", title, rule.name if rule else "-", row.error or outcome)
    if as_json:
        return
    out.print(table)
    summary = Table(title="tickets per rule")
    summary.add_column("rule")
    summary.add_column("tickets", justify="right")
    for name, count in hits.most_common():
        summary.add_row(name, str(count))
    out.print(summary)
