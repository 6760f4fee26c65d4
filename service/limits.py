"""The per-worker limit of requests in progress: work, not open connections.

Open connections cost the server little (a slow or idle one is closed by the HTTP server's
header timeout, ``service/server.py``); requests being worked on cost CPU and memory. Past
``TICKET_ROUTER_MAX_CONCURRENCY`` of them in one worker, further requests are answered 503 at
once with ``Retry-After`` instead of queueing. The probes and ``/metrics`` are never refused.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from service.errors import UnavailableError, send_problem

__all__ = ["ConcurrencyLimit", "UNLIMITED_PATHS"]

# Operations endpoints are cheap and must answer under load: never limited, never rate limited.
UNLIMITED_PATHS = ("^/healthz$", "^/readyz$", "^/metrics$")


class ConcurrencyLimit(ASGIMiddleware):
    """Counts requests in progress in this worker and refuses those past ``limit`` with 503."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = UNLIMITED_PATHS

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_progress = 0  # one counter for the worker: the instance is shared by every route

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run the request if there is room, else answer 503."""
        if self.in_progress >= self.limit:
            busy = UnavailableError(
                f"the server is working on its limit of {self.limit} requests; retry shortly",
                {"Retry-After": "1"},
            )
            await send_problem(scope, receive, send, busy)
            return
        self.in_progress += 1
        try:
            await next_app(scope, receive, send)
        finally:
            self.in_progress -= 1
