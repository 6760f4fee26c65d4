"""Where the data lives when the settings do not say: the same places from any working directory.

``TICKET_ROUTER_DATA_DIR`` (default ``./var``) and ``TICKET_ROUTER_TRAINING_DATA`` (default
``./training_data``) are read relative to the working directory. When a variable is unset and
its default does not exist there (a user runs the CLI from the folder their export is in), the
command uses the checkout it was installed from (``make run`` installs it editable): its
``training_data/`` and its ``var/``, where ``make run`` keeps the model. An installation that
is not a checkout falls back to a per-user data dir (``$XDG_DATA_HOME/ticket-router``, by
default ``~/.local/share/ticket-router``); its training data must then be named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_TRAINING_DATA",
    "Places",
    "checkout_root",
    "current_places",
    "default_places",
]

DEFAULT_DATA_DIR = Path("./var")
DEFAULT_TRAINING_DATA = Path("./training_data")


@dataclass(frozen=True, slots=True)
class Places:
    """The data dir and the training data a command uses when their variables are unset."""

    data_dir: Path
    training_data: Path


def checkout_root() -> Path | None:
    """The source checkout this package runs from (an editable install), or None."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file() and (root / "training_data" / "teams.toml").is_file():
        return root
    return None


def default_places(cwd: Path, environ: Mapping[str, str], checkout: Path | None) -> Places:
    """The data dir and training data for a command started in ``cwd`` (see the module's docstring)."""
    data_dir = DEFAULT_DATA_DIR
    if not (cwd / DEFAULT_DATA_DIR).is_dir() and not (cwd / DEFAULT_TRAINING_DATA).is_dir():
        if checkout is not None:
            data_dir = checkout / "var"
        else:
            base = environ.get("XDG_DATA_HOME") or str(Path(environ.get("HOME") or Path.home()) / ".local" / "share")
            data_dir = Path(base) / "ticket-router"
    training_data = DEFAULT_TRAINING_DATA
    if not (cwd / DEFAULT_TRAINING_DATA / "teams.toml").is_file() and checkout is not None:
        training_data = checkout / "training_data"
    return Places(data_dir, training_data)


def current_places(environ: Mapping[str, str]) -> Places:
    """``default_places`` for this process."""
    return default_places(Path(os.getcwd()), environ, checkout_root())
