"""Logging in with the admin token and out again (see ``access`` for the session and its cookie)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect
from msgspec import Meta

from service.console.access import BASE, ConsoleAccess, safe_next
from service.console.render import page

__all__ = ["LoginController"]


class LoginForm(msgspec.Struct):
    """The login form: the admin token, the name corrections will carry, and where to go next."""

    token: Annotated[str, Meta(max_length=1000)] = ""
    name: Annotated[str, Meta(max_length=100)] = ""
    next: Annotated[str, Meta(max_length=2000)] = ""


Form = Body(media_type=RequestEncodingType.URL_ENCODED)


class LoginController(Controller):
    """The login form and logging out."""

    path = BASE
    include_in_schema = False

    @get("/login", name="console-login")
    async def login_page(self, request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:
        """Ask for the admin token (only when the console needs a login)."""
        access: ConsoleAccess = request.app.state.console_access
        if access.mode != "login":
            return Redirect(safe_next(next))
        return page(request, "login.html", next=safe_next(next), error=None)

    @post("/login", status_code=303)
    async def login(self, request: Request[Any, Any, Any], data: Annotated[LoginForm, Form]) -> Response[Any]:
        """Check the token; on success start a session and go where the person was going."""
        access: ConsoleAccess = request.app.state.console_access
        if access.mode != "login":
            return Redirect(safe_next(data.next), status_code=303)
        if not access.token_matches(data.token.strip()):
            return page(request, "login.html", 401, next=safe_next(data.next), error="That is not the admin token.")
        name = " ".join(data.name.split())[:100] or "admin"
        return Redirect(safe_next(data.next), status_code=303, cookies=[access.issue(name)])

    @post("/logout", status_code=303)
    async def logout(self, request: Request[Any, Any, Any]) -> Response[Any]:
        """End the session in this browser."""
        access: ConsoleAccess = request.app.state.console_access
        return Redirect(f"{BASE}/login", status_code=303, cookies=[access.clear()])
