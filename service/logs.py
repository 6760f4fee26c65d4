"""Structured logs: JSON lines, one access line per request with its id; never ticket text or secrets."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

__all__ = ["AccessLogMiddleware", "JsonFormatter", "client_disconnected", "logging_config", "request_id"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# One mutable cell per request: set when the server tells the app that the client went away.
_disconnected: contextvars.ContextVar[list[bool] | None] = contextvars.ContextVar("disconnected", default=None)


def client_disconnected() -> bool:
    """Whether the client of the request being handled has disconnected."""
    cell = _disconnected.get()
    return bool(cell and cell[0])


_access = logging.getLogger("ticket_router.access")
_VALID_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the request id, and any extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


JsonFormatter.converter = time.gmtime


def logging_config(level: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the service and the HTTP server: JSON lines on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "_granian": {"level": level.upper()},
            "granian.access": {"level": "WARNING"},  # replaced by ticket_router.access
            "httpx": {"level": "WARNING"},
        },
    }


class AccessLogMiddleware:
    """Give each request an id (kept from a valid ``X-Request-Id``) and log one line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        incoming = dict(scope["headers"]).get(b"x-request-id", b"")
        rid = incoming.decode() if _VALID_ID.match(incoming) else secrets.token_hex(8)
        token = request_id.set(rid)
        disconnected = [False]
        cell = _disconnected.set(disconnected)
        started = time.perf_counter()
        status = 500

        async def receive_watching() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected[0] = True
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive_watching, send_with_id)
        finally:
            _access.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": str(scope.get("path_template") or scope["path"]),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                },
            )
            _disconnected.reset(cell)
            request_id.reset(token)
