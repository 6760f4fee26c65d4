"""Domain errors of the learning core.

Every error the core raises on purpose derives from ``RouterError``; the service maps
them to HTTP responses in one table (``service/errors.py``) and the CLI prints them.

    RouterError
    ├── DataError                 input data cannot be used
    │   ├── TaxonomyError         teams.toml is missing, malformed or has fewer than two teams
    │   ├── DatasetError          labelled examples are malformed (names file and line)
    │   ├── RulesError            rules.toml is malformed (names the rule: bad regex, unknown team)
    │   └── TrainingDataError     the data parses but cannot train a model (one team, no evidence)
    ├── ModelNotFoundError        no such model version, or no active model
    ├── ModelIntegrityError       an artifact's sha256 or library versions do not match its manifest
    └── RegistryError             the registry cannot do what was asked (activate a missing version...)
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "DataError",
    "DatasetError",
    "ModelIntegrityError",
    "ModelNotFoundError",
    "Problem",
    "RegistryError",
    "RouterError",
    "RulesError",
    "TaxonomyError",
    "TrainingDataError",
]


class RouterError(Exception):
    """Base of every error the core raises on purpose."""


class DataError(RouterError):
    """Input data (taxonomy, examples, tickets) cannot be used as given."""


class TaxonomyError(DataError):
    """Raised when a taxonomy file is missing, malformed, or defines fewer than two teams."""


class Problem:
    """One located problem in an input file: ``path:line: message``."""

    __slots__ = ("line", "message", "path")

    def __init__(self, path: str, line: int, message: str) -> None:
        self.path = path
        self.line = line
        self.message = message

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self.path!r}, {self.line}, {self.message!r})"


class DatasetError(DataError):
    """Raised when labelled examples are malformed; carries every problem found, with file and line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(str(p) for p in self.problems[:20])
        more = len(self.problems) - 20
        if more > 0:
            shown += f"\n... and {more} more"
        super().__init__(f"{len(self.problems)} problem(s) in the labelled examples:\n{shown}")


class RulesError(DataError):
    """Raised when a rules file is malformed; the message names the file and the rule."""


class TrainingDataError(DataError):
    """Raised when data parses but cannot train a model: fewer than two teams, or a team with no evidence."""


class ModelNotFoundError(RouterError):
    """Raised when a model version does not exist or no model is active."""


class ModelIntegrityError(RouterError):
    """Raised when an artifact's sha256 or recorded library versions do not match: retrain."""


class RegistryError(RouterError):
    """Raised when the registry cannot perform an operation (for example, nothing to roll back to)."""
