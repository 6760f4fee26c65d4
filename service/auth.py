"""Request guards: bearer tokens (API tokens for classification, the admin token for what changes
state) and the content type of JSON bodies.

The guards are coroutines although they never wait: Litestar runs a plain function guard in
a worker thread, a hop that costs more than the check itself.

Tokens are compared in constant time and never logged. With no API tokens configured the
classify endpoints are open (local use); with no admin token configured the admin endpoints
are refused, since nobody could be authorised to use them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from service.errors import ForbiddenError, NotAuthenticatedError, UnsupportedMediaError
from service.runtime import Runtime

__all__ = [
    "TokenBook",
    "access_guard",
    "admin_guard",
    "api_guard",
    "bearer_token",
    "json_api_guard",
    "json_body_guard",
    "parse_bearer",
    "token_guard",
]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="ticket-router"'}
# The only body type our JSON endpoints read: no other "+json" type is ours (a guard that let any
# application/*+json through accepted application/evil+json).
JSON = "application/json"


def parse_bearer(header: str) -> str | None:
    """The token of an ``Authorization`` value ``Bearer <token>`` (scheme in any case, spaces trimmed)."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    return parse_bearer(connection.headers.get("authorization", ""))


class TokenBook:
    """Which configured token a request carries, by a name that is not the token (``api-1``, ``admin``).

    Only digests are kept; a presented token is looked up by its digest, so nothing about a
    configured token can be learnt from how long the look-up takes.
    """

    def __init__(self, api_tokens: Sequence[str], admin_token: str | None) -> None:
        named = [(f"api-{i}", token) for i, token in enumerate(api_tokens, start=1)]
        if admin_token:
            named.append(("admin", admin_token))
        self._names = {_digest(token): name for name, token in named}

    def identify(self, header: str) -> str | None:
        """The name of the configured token in an ``Authorization`` value, or None (absent or unknown)."""
        token = parse_bearer(header)
        return None if token is None else self._names.get(_digest(token))


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _matches(token: str, candidates: tuple[str, ...]) -> bool:
    # Compare with every candidate (no early exit), so timing says nothing about which matched.
    found = False
    for candidate in candidates:
        found |= hmac.compare_digest(token.encode(), candidate.encode())
    return found


def _runtime(connection: ASGIConnection[Any, Any, Any, Any]) -> Runtime:
    runtime: Runtime = connection.app.state.runtime
    return runtime


async def api_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Classification: open when no API tokens are configured; else an API or the admin token."""
    settings = _runtime(connection).settings
    if not settings.api_tokens:
        return
    token = bearer_token(connection)
    if token is None:
        raise NotAuthenticatedError("send `Authorization: Bearer <token>` with an API token", _CHALLENGE)
    admin = (settings.admin_token,) if settings.admin_token else ()
    if not _matches(token, settings.api_tokens + admin):
        raise NotAuthenticatedError("unknown token", _CHALLENGE)


async def admin_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Administration: the admin token only; an API token is recognised but not enough (403)."""
    settings = _runtime(connection).settings
    if not settings.admin_token:
        raise ForbiddenError("administration is disabled: set TICKET_ROUTER_ADMIN_TOKEN to enable it")
    token = bearer_token(connection)
    if token is None:
        raise NotAuthenticatedError("send `Authorization: Bearer <admin token>`", _CHALLENGE)
    if _matches(token, (settings.admin_token,)):
        return
    if _matches(token, settings.api_tokens):
        raise ForbiddenError("this endpoint needs the admin token; an API token is not enough")
    raise NotAuthenticatedError("unknown token", _CHALLENGE)


async def access_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The guard a handler's ``opt["access"]`` names: ``"api"`` for ``api_guard``, anything else the admin token.

    For a controller whose routes share paths but not rights (``GET /v1/models`` for API tokens,
    ``POST /v1/models`` for the admin), declared once on the controller.
    """
    if handler.opt.get("access") == "api":
        await api_guard(connection, handler)
    else:
        await admin_guard(connection, handler)


async def token_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Feedback: any configured token (API or admin); open only when no token at all is configured."""
    settings = _runtime(connection).settings
    accepted = settings.api_tokens + ((settings.admin_token,) if settings.admin_token else ())
    if not accepted:
        return
    token = bearer_token(connection)
    if token is None:
        raise NotAuthenticatedError("send `Authorization: Bearer <token>`", _CHALLENGE)
    if not _matches(token, accepted):
        raise NotAuthenticatedError("unknown token", _CHALLENGE)


async def json_body_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Routes that read a JSON body refuse any other content type, or none, with 415 (before reading the body)."""
    has_body = (
        connection.headers.get("content-length", "0") not in {"", "0"} or "transfer-encoding" in connection.headers
    )
    if not has_body:
        return
    media = connection.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == JSON:
        return
    raise UnsupportedMediaError(
        f"send the body as application/json, not {media or 'without a Content-Type'}"
        " (with curl: -H 'content-type: application/json')"
    )


async def json_api_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """``api_guard`` then ``json_body_guard`` as one guard: Litestar copies the handler once per guard."""
    await api_guard(connection, handler)
    await json_body_guard(connection, handler)
