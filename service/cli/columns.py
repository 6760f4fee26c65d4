"""The column options a backlog file's readers share (``label`` and ``import``), gathered into ``Columns``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from service.backlog import Columns

__all__ = ["column_options"]

F = TypeVar("F", bound=Callable[..., Any])

# (option, parameter, Columns field) of the options every reader has.
_SHARED = (
    ("--id-column", "id_column", "id"),
    ("--title-column", "title_column", "title"),
    ("--body-column", "body_column", "body"),
    ("--text-column", "text_column", "text"),
    ("--team-column", "team_column", "team"),
    ("--labels-column", "labels_column", "labels"),
    ("--repository-column", "repository_column", "repository"),
    ("--repository", "default_repository", "default_repository"),
)
# Only for commands that apply routing rules, which may ask for a ticket's author or tracker.
_RULES = (
    ("--author-column", "author_column", "author"),
    ("--tracker", "default_tracker", "default_tracker"),
)


def column_options(team_help: str, labels_help: str, *, rules: bool = False) -> Callable[[F], F]:
    """Add the column options to a command, which gets them as one ``columns: Columns`` argument."""
    helps = {
        "--id-column": "Column (or field) holding the ticket id.",
        "--title-column": "Column holding the title.",
        "--body-column": "Column holding the body.",
        "--text-column": "Column holding title and body together.",
        "--team-column": team_help,
        "--labels-column": labels_help,
        "--repository-column": "Column holding the repository or project each ticket was filed in, read as"
        " evidence [default: repository; Jira: Project key].",
        "--repository": "The repository of every ticket that names none.",
        "--author-column": "Column holding the author, for routing rules [default: author].",
        "--tracker": "The tracker of every ticket that names none, for routing rules.",
    }
    chosen = _SHARED + (_RULES if rules else ())

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            fields = {field: kwargs.pop(parameter) for _, parameter, field in chosen}
            return func(*args, columns=Columns(**fields), **kwargs)

        wrapped: Any = command
        for option, parameter, _ in reversed(chosen):
            wrapped = click.option(option, parameter, help=helps[option])(wrapped)
        return cast(F, wrapped)

    return decorate
