"""Who may use the console: a login with the admin token, a signed session cookie, CSRF on every form.

- With ``TICKET_ROUTER_ADMIN_TOKEN`` set, the console asks for the token once (compared in
  constant time) and keeps a session in a signed cookie: HttpOnly, SameSite=Strict, scoped to
  ``/console``, valid ``TICKET_ROUTER_CONSOLE_SESSION_HOURS``. The signing key comes from a random
  secret kept in the data dir (``console.secret``, made once, shared by every worker and replica
  that shares the data dir) and from the admin token, so rotating the token ends every session.
- With no token configured at all the console is open, like the rest of the API then is. With
  API tokens but no admin token it is refused: nobody could log in, and an open console would
  bypass the API tokens.
- Every form that changes state carries a CSRF token (Litestar's ``CSRFMiddleware``, its cookie
  scoped to ``/console`` too); nothing changes state on GET.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from litestar.config.csrf import CSRFConfig
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware.csrf import CSRFMiddleware
from litestar.types import Receive, Scope, Send

from service.errors import ForbiddenError, NotAuthenticatedError
from service.settings import PREFIX, Settings

__all__ = [
    "BASE",
    "Access",
    "ConsoleAccess",
    "ConsoleCSRFMiddleware",
    "access_of",
    "console_guard",
    "csrf_config",
    "load_secret",
    "safe_next",
]

BASE = "/console"
SESSION_COOKIE = "tr_console_session"
CSRF_COOKIE = "tr_console_csrf"
OPEN_USER = "console"

Access = Literal["open", "login", "disabled"]


def access_of(settings: Settings) -> Access:
    """``login`` with an admin token, ``open`` with no token at all, ``disabled`` with API tokens only."""
    if settings.admin_token:
        return "login"
    return "disabled" if settings.api_tokens else "open"


def load_secret(path: Path) -> bytes:
    """The console's random signing secret, made once and kept in ``path`` (several processes may race to make it)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, staged = tempfile.mkstemp(prefix=".console-secret-", dir=path.parent)
        try:
            os.write(handle, secrets.token_hex(32).encode())
            os.close(handle)
            os.chmod(staged, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(staged, path)  # atomic, and refused when another process made it first
        finally:
            os.unlink(staged)
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError):
        raise RuntimeError(f"{path} is not a console secret; delete it and restart to make a new one") from None


class ConsoleCSRFMiddleware(CSRFMiddleware):
    """Litestar's CSRF check, except that a page load replaces a CSRF cookie it cannot verify.

    Litestar keeps any cookie it finds on a GET, so after the secret changes (or with another
    console on the same host, whose cookie it receives too: cookies ignore ports) every form
    would be refused until the browser closes. Dropping the unverifiable cookie from a safe
    request makes the middleware issue a fresh one.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["method"] in self.config.safe_methods:
            scope["headers"] = [self._without_bad_cookie(name, value) for name, value in scope["headers"]]
        await super().__call__(scope, receive, send)

    def _without_bad_cookie(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name != b"cookie":
            return name, value
        prefix = f"{self.config.cookie_name}="
        kept = [
            part
            for part in value.decode("latin-1").split(";")
            if not part.strip().startswith(prefix) or self._decode_csrf_token(part.strip()[len(prefix) :]) is not None
        ]
        return name, ";".join(kept).encode("latin-1")


def csrf_config(secret: bytes, secure: bool) -> CSRFConfig:
    """Litestar's double-submit CSRF check, with its cookie scoped to the console like the session's."""
    return CSRFConfig(
        secret=hmac.new(secret, b"console csrf", hashlib.sha256).hexdigest(),
        cookie_name=CSRF_COOKIE,
        cookie_path=BASE,
        cookie_httponly=True,  # forms carry the token in a hidden field, scripts never need it
        cookie_samesite="strict",
        cookie_secure=secure,
    )


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a console path only, never another site."""
    if target and target.startswith(BASE + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return BASE + "/"


class ConsoleAccess:
    """The console's access mode, its sessions and the guard every page but the login form uses."""

    def __init__(self, settings: Settings, secret: bytes) -> None:
        self.mode = access_of(settings)
        self.admin_token = settings.admin_token or ""
        token_digest = hashlib.sha256(self.admin_token.encode()).digest()
        self._key = hmac.new(secret, b"console session|" + token_digest, hashlib.sha256).digest()
        self.lifetime = settings.console_session_hours * 3600
        self.secure = settings.console_secure_cookies

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is the admin token (constant time)."""
        return bool(self.admin_token) and hmac.compare_digest(token.encode(), self.admin_token.encode())

    def issue(self, name: str, now: float | None = None) -> Cookie:
        """A session cookie for ``name``."""
        expires = int((time.time() if now is None else now) + self.lifetime)
        who = base64.urlsafe_b64encode(name.encode()).decode()
        payload = f"{expires}.{who}.{secrets.token_hex(8)}"
        return self._cookie(f"{payload}.{self._sign(payload)}", int(self.lifetime))

    def clear(self) -> Cookie:
        """A cookie that ends the session in the browser."""
        return self._cookie("", 0)

    def user_of(self, value: str | None, now: float | None = None) -> str | None:
        """The name a valid, unexpired session cookie carries, else None."""
        if not value or value.count(".") != 3:
            return None
        payload, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(payload)):
            return None
        expires, who, _ = payload.split(".")
        try:
            if not expires.isdigit() or int(expires) < (time.time() if now is None else now):
                return None
            return base64.urlsafe_b64decode(who.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    async def guard(self, connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        """Every console page: open, a valid session, or refused; the user's name goes to ``state.console_user``."""
        if self.mode == "open":
            connection.state.console_user = OPEN_USER
            return
        if self.mode == "disabled":
            raise ForbiddenError(
                f"the console needs {PREFIX}ADMIN_TOKEN: with API tokens but no admin token nobody could log in"
            )
        user = self.user_of(connection.cookies.get(SESSION_COOKIE))
        if user is None:
            raise NotAuthenticatedError("log in with the admin token to use the console")
        connection.state.console_user = user

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def _cookie(self, value: str, max_age: int) -> Cookie:
        return Cookie(
            key=SESSION_COOKIE,
            value=value,
            path=BASE,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )


async def console_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The guard of every console page but the login form (see ``ConsoleAccess.guard``)."""
    access: ConsoleAccess = connection.app.state.console_access
    await access.guard(connection, handler)
