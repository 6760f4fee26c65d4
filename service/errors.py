"""Errors of the service and the one table that turns every error into problem+json.

Service errors (the core's live in ``model/errors.py``)::

    ServiceError
    ├── BadRequestError          the request cannot be read (400)
    ├── NotAuthenticatedError    no or unknown credentials (401)
    ├── ForbiddenError           valid credentials without the right (403)
    ├── NotFoundError            no such resource (404)
    ├── ConflictError            the request conflicts with the current state (409)
    ├── PayloadTooLargeError     a body or batch over its limit (413)
    ├── UnprocessableError       a body that parses but has invalid fields (422)
    ├── UnsupportedMediaError    a Content-Type the endpoint does not read (415)
    ├── TooManyRequestsError     a client over its rate limit or failed-authentication budget (429)
    ├── ClientDisconnectedError  the client went away before its request was read (499, never sent)
    └── UnavailableError         no model loaded, a dependency down, or the server at its limit (503)

Tracker errors live in ``service/trackers/errors.py`` and are mapped in the table below:
a disabled tracker 404, a bad signature 401, a body that is not JSON 400, a body without the
tracker's shape 422.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, InternalServerException, ValidationException
from litestar.types import Receive, Scope, Send

from model.errors import (
    DataError,
    ModelIntegrityError,
    ModelNotFoundError,
    RegistryError,
    RouterError,
)
from service.logs import client_disconnected
from service.schemas import Problem
from service.store import StoreDataError, StoreError
from service.trackers.errors import (
    InvalidPayloadError,
    MalformedPayloadError,
    SignatureError,
    TrackerDisabledError,
    WebhookError,
)

__all__ = [
    "PROBLEM_JSON",
    "NoModelError",
    "BadRequestError",
    "ClientDisconnectedError",
    "ConflictError",
    "ForbiddenError",
    "NotAuthenticatedError",
    "NotFoundError",
    "PayloadTooLargeError",
    "ServiceError",
    "TooManyRequestsError",
    "UnavailableError",
    "UnprocessableError",
    "UnsupportedMediaError",
    "exception_handlers",
    "problem_of",
    "problem_response",
    "send_problem",
]

log = logging.getLogger("ticket_router.errors")

PROBLEM_JSON = "application/problem+json"


class NoModelError(Exception):
    """Raised when a decision is asked for while no model is loaded (503 ``no-model``)."""


class ServiceError(Exception):
    """Base of the service's own errors; ``status`` is the HTTP status it maps to."""

    status = 500
    slug = "internal"

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}


class BadRequestError(ServiceError):
    """Raised when a request body cannot be read at all (not JSON, not UTF-8, empty)."""

    status, slug = 400, "bad-request"


class NotAuthenticatedError(ServiceError):
    """Raised when a protected endpoint gets no token or an unknown one."""

    status, slug = 401, "not-authenticated"


class ForbiddenError(ServiceError):
    """Raised when a valid token lacks the right (an API token on an admin endpoint)."""

    status, slug = 403, "forbidden"


class NotFoundError(ServiceError):
    """Raised when a resource (job, decision, feedback, endpoint) does not exist."""

    status, slug = 404, "not-found"


class ConflictError(ServiceError):
    """Raised when the state forbids the request (a worse model without force, a training already running)."""

    status, slug = 409, "conflict"


class PayloadTooLargeError(ServiceError):
    """Raised when a body or a batch exceeds its configured limit."""

    status, slug = 413, "too-large"


class UnprocessableError(ServiceError):
    """Raised when a body the handler decodes itself is well-formed but its fields are invalid."""

    status, slug = 422, "invalid-fields"


class UnsupportedMediaError(ServiceError):
    """Raised when the Content-Type is not one the endpoint reads."""

    status, slug = 415, "unsupported-media-type"


class TooManyRequestsError(ServiceError):
    """Raised when a client is over its rate limit, or its address over its failed-authentication budget."""

    status, slug = 429, "rate-limited"


class ClientDisconnectedError(ServiceError):
    """Raised when the client disconnects before its request body was read; nobody receives the answer.

    Its status is nginx's 499 (client closed request): it shows in metrics and logs as the
    client's doing, never as a 5xx of ours.
    """

    status, slug = 499, "client-closed-request"


class UnavailableError(ServiceError):
    """Raised when the service cannot answer now: no model loaded, a dependency down, or at its limit."""

    status, slug = 503, "unavailable"


_TITLES = {499: "Client Closed Request"}


_encoder = msgspec.json.Encoder()


def problem_response(
    request: Request[Any, Any, Any] | None,
    status: int,
    slug: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> Response[bytes]:
    """An RFC 9457 response; the only place a problem document is built."""
    problem = Problem(
        type=f"urn:ticket-router:problem:{slug}",
        title=_TITLES.get(status) or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path if request is not None else None,
        errors=errors,
    )
    return Response(
        content=_encoder.encode(problem),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


# The table: exception type -> (status, slug). Checked in order; the first match wins.
_TABLE: list[tuple[type[BaseException], int, str]] = [
    (NoModelError, 503, "no-model"),
    (StoreDataError, 422, "not-storable"),
    (StoreError, 503, "database-unavailable"),
    (ModelNotFoundError, 404, "model-not-found"),
    (ModelIntegrityError, 409, "model-integrity"),
    (RegistryError, 409, "registry-conflict"),
    (DataError, 422, "invalid-data"),
    (RouterError, 400, "bad-request"),
    (TrackerDisabledError, 404, "webhook-disabled"),
    (SignatureError, 401, "bad-signature"),
    (MalformedPayloadError, 400, "bad-request"),
    (InvalidPayloadError, 422, "invalid-payload"),
]


def _handle_service_error(request: Request[Any, Any, Any], exc: ServiceError) -> Response[bytes]:
    if isinstance(exc, ClientDisconnectedError):
        log.info("client disconnected on %s %s before its request was read", request.method, request.url.path)
    return problem_response(request, exc.status, exc.slug, exc.detail, exc.headers)


async def send_problem(scope: Scope, receive: Receive, send: Send, exc: ServiceError) -> None:
    """Answer ``exc`` from an ASGI middleware, the way the table answers it from a handler."""
    request: Request[Any, Any, Any] = Request(scope, receive)
    response = _handle_service_error(request, exc)
    await response.to_asgi_response(app=None, request=request)(scope, receive, send)


def _handle_router_error(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    for kind, status, slug in _TABLE:
        if isinstance(exc, kind):
            return problem_response(request, status, slug, str(exc))
    return _handle_unexpected(request, exc)


def _handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    if isinstance(exc, InternalServerException) and client_disconnected():
        # Litestar's way of saying the body stopped because the client went away: not our fault.
        return _handle_service_error(request, ClientDisconnectedError("the client disconnected"))
    if isinstance(exc, ValidationException):
        errors = exc.extra if isinstance(exc.extra, list) else None
        if errors and any(e.get("key") == "data" and e.get("message") == "'data'" for e in errors):
            return problem_response(request, 400, "bad-request", "the request body is empty; send a JSON object")
        detail = "; ".join(_describe(e) for e in errors) if errors else str(exc.detail)
        return problem_response(request, 422, "invalid-fields", detail or "invalid request", errors=errors)
    status = exc.status_code
    if status >= 500:
        return _handle_unexpected(request, exc)
    slug = {
        400: "bad-request",
        401: "not-authenticated",
        403: "forbidden",
        404: "not-found",
        405: "method-not-allowed",
        413: "too-large",
        415: "unsupported-media-type",
        429: "rate-limited",
    }.get(status, "client-error")
    detail = str(exc.detail) if exc.detail else HTTPStatus(status).phrase
    headers = dict(exc.headers or {})
    if status == 429 and "Retry-After" not in headers:
        # Litestar's rate limiter says when the window resets; Retry-After is what clients read.
        headers["Retry-After"] = str(max(1, int(headers.get("RateLimit-Reset", "1"))))
        detail = "too many requests from this client; retry after the number of seconds in Retry-After"
    return problem_response(request, status, slug, detail, headers)


def _handle_unexpected(request: Request[Any, Any, Any], exc: BaseException) -> Response[bytes]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(request, 500, "internal", "an unexpected error occurred; it has been logged")


def _describe(error: dict[str, Any]) -> str:
    key = error.get("key")
    message = str(error.get("message", "invalid value"))
    return f"{key}: {message}" if key and key != "data" else message


def _handle_too_deep(request: Request[Any, Any, Any], exc: RecursionError) -> Response[bytes]:
    # Only the JSON decoders recurse on request data: this is a hostile or broken body.
    return problem_response(request, 400, "bad-request", "the JSON body is nested too deeply")


def _handle_not_utf8(request: Request[Any, Any, Any], exc: UnicodeDecodeError) -> Response[bytes]:
    # The JSON decoders meet undecodable bytes in a request body.
    return problem_response(request, 400, "bad-request", "the body is not valid UTF-8")


exception_handlers: dict[type[Exception] | int, Any] = {
    RecursionError: _handle_too_deep,
    UnicodeDecodeError: _handle_not_utf8,
    ServiceError: _handle_service_error,
    RouterError: _handle_router_error,
    NoModelError: _handle_router_error,
    StoreError: _handle_router_error,
    WebhookError: _handle_router_error,
    HTTPException: _handle_http_exception,
    Exception: _handle_unexpected,
}


_problem_decoder = msgspec.json.Decoder(Problem)


def problem_of(request: Request[Any, Any, Any], exc: Exception) -> tuple[Problem, dict[str, str]]:
    """What the table above makes of ``exc``: its problem document and headers, for pages that show it as HTML."""
    for kind in type(exc).__mro__:
        handler = exception_handlers.get(kind)
        if handler is not None:
            response: Response[bytes] = handler(request, exc)
            return _problem_decoder.decode(response.content), {k: str(v) for k, v in response.headers.items()}
    response = _handle_unexpected(request, exc)  # pragma: no cover - Exception is in the table
    return _problem_decoder.decode(response.content), {}
