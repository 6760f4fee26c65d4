"""The triage console: server-rendered pages under ``/console`` for the people who route tickets.

Pages: try a ticket (``tickets``), the triage queue (``queue``), models (``models``),
deliveries and write-backs (``outbox``), corrections (``corrections``); who may use them and
CSRF in ``access``; templates, filters and error pages in ``render``. Plain HTML forms do
everything; a small script adds keyboard shortcuts to the queue.
"""

from __future__ import annotations

from typing import Any

from litestar import Response, Router, get
from litestar.datastructures import CacheControlHeader, State
from litestar.middleware import DefineMiddleware
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from service.console.access import BASE, ConsoleAccess, ConsoleCSRFMiddleware, csrf_config, load_secret
from service.console.catalog import ModelCatalog
from service.console.corrections import CorrectionsController
from service.console.login import LoginController
from service.console.models import ModelsController
from service.console.outbox import OutboxController
from service.console.queue import QueueController
from service.console.render import SECURITY_HEADERS, STATIC, error_handlers, template_config
from service.console.tickets import TryController
from service.settings import Settings

__all__ = ["Console", "console"]


class Console:
    """What ``create_app`` wires in: the routes, the template engine, and the state the pages share."""

    def __init__(self, routes: list[Any], templates: TemplateConfig[Any], access: ConsoleAccess) -> None:
        self.routes = routes
        self.templates = templates
        self.access = access
        self.catalog = ModelCatalog()

    def attach(self, state: State) -> None:
        """Keep the access rules and the model catalog in the app's state, where the pages find them."""
        state.console_access = self.access
        state.console_catalog = self.catalog


@get("/", include_in_schema=False, name="root")
async def root() -> Redirect:
    """The service's front page is the console."""
    return Redirect(f"{BASE}/", status_code=302)


async def _secure(response: Response[Any]) -> Response[Any]:
    for name, value in SECURITY_HEADERS.items():
        if name not in response.headers:
            response.headers[name] = value
    return response


def console(settings: Settings) -> Console:
    """The console for ``settings`` (its signing secret is read from, or made in, the data dir)."""
    secret = load_secret(settings.data_dir / "console.secret")
    access = ConsoleAccess(settings, secret)
    pages = Router(
        path="/",
        route_handlers=[
            LoginController,
            TryController,
            QueueController,
            ModelsController,
            OutboxController,
            CorrectionsController,
        ],
        middleware=[
            DefineMiddleware(ConsoleCSRFMiddleware, config=csrf_config(secret, settings.console_secure_cookies))
        ],
        exception_handlers=error_handlers(),
        after_request=_secure,
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=f"{BASE}/static",
        directories=[STATIC],
        name="console-static",
        cache_control=CacheControlHeader(max_age=3600),
        include_in_schema=False,
    )
    return Console([root, pages, static], template_config(), access)
