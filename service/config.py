"""Reading typed groups of settings from ``TICKET_ROUTER_*`` environment variables.

A group is a frozen dataclass; field ``x`` of a group read with prefix ``P`` comes from the
variable ``P`` + ``X``. The main settings and each tracker's settings are groups, so every
variable is parsed and refused the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_type_hints

__all__ = ["PREFIX", "SettingsError", "WriteBackMode", "read_group", "secret"]

PREFIX = "TICKET_ROUTER_"

WriteBackMode = Literal["label", "label+comment", "dry-run"]

G = TypeVar("G")


class SettingsError(ValueError):
    """Raised when an environment variable has a value that cannot be used; names the variable."""


def secret() -> Any:
    """A field for a secret: unset by default and left out of ``repr``."""
    return dataclasses.field(default=None, repr=False)


def read_group(cls: type[G], environ: Mapping[str, str], prefix: str, skip: Collection[str] = ()) -> dict[str, Any]:
    """The values of ``cls``'s fields that ``environ`` sets, parsed to the fields' types.

    Fields named in ``skip`` are not read (they are groups of their own).
    """
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in skip:
            continue
        name = prefix + f.name.upper()
        raw = environ.get(name)
        if raw is not None:
            values[f.name] = _parse(name, raw.strip(), hints[f.name])
    return values


def _parse(name: str, raw: str, hint: object) -> object:
    """Convert one variable's text to the field's type."""
    optional = _is_optional(hint)
    options = [a for a in get_args(hint) if a is not type(None)] if optional else [hint]
    target = options[0] if options else hint
    if optional and raw == "":
        return None
    try:
        if target is Path:
            return Path(raw)
        if target is bool:
            lowered = raw.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off", ""}:
                return False
            raise ValueError(raw)
        if target is int:
            return int(raw)
        if target is float:
            return float(raw)
        if target == tuple[str, ...]:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if getattr(target, "__origin__", None) is Literal:
            if raw not in get_args(target):
                raise ValueError(raw)
            return raw
        return raw
    except ValueError:
        expected = (
            ", ".join(get_args(target))
            if getattr(target, "__origin__", None) is Literal
            else getattr(target, "__name__", str(target))
        )
        raise SettingsError(f"{name}={raw!r} is not a valid value (expected {expected})") from None


def _is_optional(hint: object) -> bool:
    return type(None) in get_args(hint)
