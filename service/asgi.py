"""ASGI entry point for servers: ``granian --interface asgi --factory service.asgi:app_from_env``."""

from __future__ import annotations

from litestar import Litestar

from service.app import create_app
from service.lifeline import die_with_parent, parent_from_environment
from service.settings import Settings

__all__ = ["app_from_env"]


def app_from_env() -> Litestar:
    """The app configured from ``TICKET_ROUTER_*`` environment variables.

    In a worker of ``ticket-router serve`` it also ties the worker's life to the server's main
    process, so a main process killed outright leaves no worker behind.
    """
    parent = parent_from_environment()
    if parent is not None:
        die_with_parent(parent)
    return create_app(Settings.from_env())
