"""How console pages are rendered: templates (Jinja, autoescaped), shared context, filters, errors as pages.

Every value from a ticket reaches a page through Jinja's autoescaping; links to trackers are
only http(s) addresses. Pages carry a strict Content-Security-Policy (scripts, styles and
images from the console itself only), so even a value that slipped through could not run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.template.config import TemplateConfig

from service.console.access import BASE, ConsoleAccess
from service.errors import NoModelError, exception_handlers, problem_of
from service.runtime import Runtime
from service.trackers import registry as trackers
from service.trackers.base import Tracker, web_link

__all__ = [
    "SECURITY_HEADERS",
    "STATIC",
    "error_handlers",
    "page",
    "runtime_of",
    "source_label",
    "team_names",
    "template_config",
    "ticket_link",
    "user_of",
]

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_SOURCES = {
    "api": "API",
    "batch": "API (batch)",
    "cli": "CLI",
    "console": "Console",
}


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _iso(timestamp: float | None) -> str:
    return "" if timestamp is None else dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="seconds")


def _pct(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value * 100:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _configure(engine: JinjaTemplateEngine) -> None:
    environment = engine.engine
    environment.undefined = jinja2.StrictUndefined  # a missing value is a bug, not a blank
    environment.filters.update(when=_when, iso=_iso, pct=_pct, num=_num)


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """The console's templates, autoescaped."""
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_configure)


def runtime_of(request: Request[Any, Any, Any]) -> Runtime:
    """The running service's parts."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def user_of(request: Request[Any, Any, Any]) -> str:
    """The person using the console (the name given at login), as corrections record it."""
    return str(getattr(request.state, "console_user", "console"))


def team_names(runtime: Runtime) -> dict[str, str]:
    """Team id to display name, for the active taxonomy (empty without a model)."""
    try:
        return {team.id: team.name for team in runtime.holder.taxonomy.teams}
    except NoModelError:
        return {}


def source_label(source: str) -> str:
    """Where a decision or correction came from, as people say it."""
    for kind in trackers.TRACKER_TYPES:
        if kind.name == source:
            return f"{kind.display_name} webhook"
    return _SOURCES.get(source, source)


def ticket_link(request: Request[Any, Any, Any], ticket_ref: str | None, stored: str | None = None) -> str | None:
    """The tracker page of a ticket: the address its delivery carried, else what its tracker says."""
    if stored and web_link(stored):
        return stored
    intake = getattr(request.app.state, "webhook_intake", None)
    known: Mapping[str, Tracker] = intake.trackers if intake is not None else {}
    tracker = trackers.owner_of(known, ticket_ref)
    return web_link(tracker.web_url(ticket_ref)) if tracker is not None and ticket_ref else None


def page(request: Request[Any, Any, Any], name: str, status_code: int = 200, **context: Any) -> Template:
    """A console page with what every page shows: who is logged in, the model version, the teams."""
    runtime = runtime_of(request)
    access: ConsoleAccess = request.app.state.console_access
    shared = {
        "user": getattr(request.state, "console_user", None),
        "mode": access.mode,
        "path": request.url.path,
        "model_version": runtime.holder.version,
        "team_names": team_names(runtime),
        "source_label": source_label,
    }
    return Template(name, context={**shared, **context}, status_code=status_code)


def _error_page(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    problem, headers = problem_of(request, exc)
    access: ConsoleAccess = request.app.state.console_access
    if problem.status == 401 and access.mode == "login" and request.method == "GET":
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return Redirect(f"{BASE}/login?next={quote(target, safe='')}", status_code=303)
    detail = problem.detail
    if isinstance(exc, PermissionDeniedException) and "CSRF" in str(exc.detail):
        detail = "This form is out of date or came from another site. Reload the page and try again."
    kept = {name: value for name, value in headers.items() if name.lower() == "retry-after"}
    context = {
        "status": problem.status,
        "title": problem.title,
        "detail": detail,
        "user": getattr(request.state, "console_user", None),
        "mode": access.mode,
        "path": request.url.path,
        "model_version": None,
    }
    return Template("error.html", context=context, status_code=problem.status, headers=kept)


def error_handlers() -> dict[type[Exception] | int, Any]:
    """The service's error table, shown as pages: every exception it maps, mapped to the same status."""
    return dict.fromkeys(exception_handlers, _error_page)
