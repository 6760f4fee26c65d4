"""The trackers the service knows: registered once here, looked up by name everywhere else.

Adding a tracker means writing one module that provides the ``Tracker`` protocol (with its
settings group) and adding its class to ``TRACKER_TYPES``.
"""

from __future__ import annotations

from collections.abc import Mapping

from service.config import PREFIX, read_group
from service.trackers.base import Tracker, TrackerSettings, TrackerType
from service.trackers.github import GitHub
from service.trackers.gitlab import GitLab
from service.trackers.jira import Jira

__all__ = ["TRACKER_TYPES", "build", "default_settings", "names", "owner_of", "settings_from_env"]

TRACKER_TYPES: tuple[TrackerType, ...] = (GitHub, GitLab, Jira)


def names() -> tuple[str, ...]:
    """The registered trackers' names, in registration order."""
    return tuple(kind.name for kind in TRACKER_TYPES)


def default_settings() -> dict[str, TrackerSettings]:
    """Every tracker's settings group with its defaults (nothing configured)."""
    return {kind.name: kind.settings_type() for kind in TRACKER_TYPES}


def settings_from_env(environ: Mapping[str, str]) -> dict[str, TrackerSettings]:
    """Every tracker's settings group from its ``TICKET_ROUTER_<TRACKER>_*`` variables."""
    return {
        kind.name: kind.settings_type(**read_group(kind.settings_type, environ, f"{PREFIX}{kind.name.upper()}_"))
        for kind in TRACKER_TYPES
    }


def build(settings: Mapping[str, TrackerSettings]) -> dict[str, Tracker]:
    """The trackers, each built from its settings group (its defaults when ``settings`` leaves it out)."""
    return {kind.name: kind(settings.get(kind.name) or kind.settings_type()) for kind in TRACKER_TYPES}


def owner_of(trackers: Mapping[str, Tracker], ticket_ref: str | None) -> Tracker | None:
    """The tracker a ticket reference (``<tracker>:...``) belongs to, if it is a registered one."""
    if not ticket_ref:
        return None
    name, sep, _ = ticket_ref.partition(":")
    return trackers.get(name) if sep else None
