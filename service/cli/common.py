"""What every command shares: the consoles, the settings from the context, and friendly errors."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from model.errors import ModelNotFoundError, RouterError, TaxonomyError
from service.settings import PREFIX, Settings, SettingsError
from service.store import StoreError
from service.trainer import GateRefusedError, StepProgress, TrainingStep

__all__ = ["err", "friendly", "out", "settings_of", "step_printer"]

F = TypeVar("F", bound=Callable[..., Any])

# soft_wrap: a message is one line however narrow the console (logs and pipes get no hard breaks)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def friendly(func: F) -> F:
    """Turn the errors a user can cause into one clear line and exit code 1, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (RouterError, SettingsError, StoreError, GateRefusedError) as exc:
            raise click.ClickException(str(exc) + _where(exc)) from None

    return wrapper  # type: ignore[return-value]


def _where(exc: Exception) -> str:
    """For a "not found", the setting that moves the place it looked in."""
    context = click.get_current_context(silent=True)
    settings = context.obj if context is not None and isinstance(context.obj, Settings) else None
    if settings is None:
        return ""
    if isinstance(exc, ModelNotFoundError) and "no active model" in str(exc):
        return (
            f" (the data dir is {settings.data_dir}: set {PREFIX}DATA_DIR or --data-dir to use another;"
            " `make run` keeps its model in the checkout's var/)"
        )
    if isinstance(exc, TaxonomyError) and "not found" in str(exc):
        return f" (the training data is {settings.training_data}: set {PREFIX}TRAINING_DATA or --training-data)"
    return ""


def settings_of(ctx: click.Context) -> Settings:
    """The settings the ``main`` group built from the environment and its options."""
    settings: Settings = ctx.obj
    return settings


def step_printer(console: Console, headline: str) -> StepProgress:
    """Print a training run's steps as they happen, after ``headline`` (printed with the first step)."""
    started: list[bool] = []

    def show(step: TrainingStep) -> None:
        if not started:
            console.print(headline)
            started.append(True)
        console.print(f"  {step.describe()} ({step.fraction:.0%})")

    return show
