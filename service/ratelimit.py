"""Per-client rate limits, and a budget of failed authentications per address; memory stays bounded.

Who a client is: the configured token its ``Authorization`` header carries, after parsing
(``Bearer`` in any case, spaces trimmed) and matching, named ``api-1`` or ``admin`` (never the
token itself); a request without a valid token is its client address. So a token cannot buy a
fresh budget by changing its spelling, and made-up tokens share their address's budget.

Every answer of 401 (a wrong token, a wrong webhook signature) also spends one unit of the
address's failed-authentication budget (``TICKET_ROUTER_AUTH_FAILURE_LIMIT``). Once it is spent,
every request from that address gets 429 until the budget refills, whatever token it carries,
so guessing tokens gains nothing from a valid one answering differently.

Each budget is a GCRA (generic cell rate algorithm): one number per key, the time at which the
key's budget is whole again. Keys are kept in a bounded, least-recently-used map; keys whose
budget is whole again are dropped, and past ``max_keys`` the least recently seen is forgotten
(it comes back with a full budget). Limits are per worker process.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from service.auth import TokenBook
from service.errors import TooManyRequestsError, send_problem
from service.limits import UNLIMITED_PATHS

__all__ = ["Budget", "RateLimit"]


class Budget:
    """``count`` events per ``period`` seconds per key, in bursts of up to ``count``; at most ``max_keys`` keys."""

    def __init__(self, count: int, period: float, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = period / count
        self.tolerance = period - self.interval  # how far ahead of now a key's budget may be spent
        self.max_keys = max_keys
        self.clock = clock
        self._whole_at: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._whole_at)

    def spend(self, key: str) -> float:
        """Spend one unit of ``key``'s budget; returns 0, or the seconds to wait when none is left."""
        now = self.clock()
        whole_at = max(self._whole_at.get(key, now), now)
        if whole_at - now > self.tolerance:
            return whole_at - self.tolerance - now
        self._remember(key, whole_at + self.interval, now)
        return 0.0

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may spend again (0 when it may now), without spending."""
        now = self.clock()
        whole_at = self._whole_at.get(key, now)
        return max(0.0, whole_at - self.tolerance - now)

    def _remember(self, key: str, whole_at: float, now: float) -> None:
        store = self._whole_at
        store[key] = whole_at
        store.move_to_end(key)
        # Forget, from the least recently seen end, keys whose budget is whole again (a bounded amount of work).
        for _ in range(2):
            oldest, at = next(iter(store.items()))
            if at > now or oldest == key:
                break
            del store[oldest]
        while len(store) > self.max_keys:
            store.popitem(last=False)


class RateLimit(ASGIMiddleware):
    """Applies the per-client limit and the per-address failed-authentication budget."""

    scopes = (ScopeType.HTTP,)
    exclude_path_pattern = UNLIMITED_PATHS

    def __init__(self, tokens: TokenBook, requests: Budget | None, failures: Budget | None) -> None:
        self.tokens = tokens
        self.requests = requests
        self.failures = failures

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Refuse with 429 when over a budget; count 401 answers against the address."""
        client = scope.get("client")
        address = "address:" + (client[0] if client else "unknown")
        if self.failures is not None:
            blocked = self.failures.wait(address)
            if blocked:
                await self._refuse(scope, receive, send, blocked, "too many failed authentications from this address")
                return
        if self.requests is not None:
            token = None
            for name, value in scope["headers"]:
                if name == b"authorization":
                    token = self.tokens.identify(value.decode("latin-1"))
                    break
            wait = self.requests.spend(f"token:{token}" if token else address)
            if wait:
                await self._refuse(scope, receive, send, wait, "too many requests from this client")
                return
        if self.failures is None:
            await next_app(scope, receive, send)
            return
        failures = self.failures

        async def send_counting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                failures.spend(address)
            await send(message)

        await next_app(scope, receive, send_counting)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, wait: float, why: str) -> None:
        seconds = max(1, math.ceil(wait))
        refusal = TooManyRequestsError(
            f"{why}; retry after the number of seconds in Retry-After", {"Retry-After": str(seconds)}
        )
        await send_problem(scope, receive, send, refusal)
