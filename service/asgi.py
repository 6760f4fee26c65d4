"""ASGI entry point for servers: ``uvicorn --factory service.asgi:app_from_env``."""

from __future__ import annotations

from litestar import Litestar

from service.app import create_app
from service.settings import Settings

__all__ = ["app_from_env"]


def app_from_env() -> Litestar:
    """The app configured from ``TICKET_ROUTER_*`` environment variables."""
    return create_app(Settings.from_env())
