"""Sending planned requests to a tracker: timeouts, bounded retries, and the tracker's pace.

A 429 or 5xx (or GitHub's 403 with an exhausted rate limit) is retried up to ``attempts``
times. The wait is what the tracker asks for (``Retry-After``, or the rate-limit reset when
the remaining quota is 0), else exponential backoff with full jitter. A wait longer than
``max_wait`` is not slept through: the request fails with that hint, and the write-back is
scheduled for later instead of holding a worker.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx

from service.metrics import WRITEBACKS
from service.trackers.base import PlannedRequest
from service.trackers.errors import TrackerRejectedError, TrackerUnavailableError

__all__ = ["RetryPolicy", "Sender", "wait_hint"]

_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one request before giving it back to the scheduler."""

    attempts: int = 3
    backoff: float = 1.0
    max_wait: float = 30.0


class Sender:
    """Sends one planned request with retries; raises ``TrackerRejectedError`` or ``TrackerUnavailableError``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.policy = policy
        self._sleep = sleep

    async def send(
        self, request: PlannedRequest, headers: dict[str, str], tracker: str = "", resend: bool = False
    ) -> httpx.Response:
        """Send ``request`` until it succeeds, is refused, or the attempts run out.

        A request with a marker (a comment) is sent again only after its probe shows that the
        tracker does not have it yet: a request that timed out may well have been applied.
        ``resend`` says an earlier attempt may already have sent it.
        """
        what = f"{request.method} {request.url}"
        last_error = ""
        hint: float | None = None
        for attempt in range(self.policy.attempts):
            try:
                if (resend or attempt > 0) and request.marker and request.probe:
                    found = await self._already_applied(request, headers)
                    if found is not None:
                        return found
                response = await self.client.request(
                    request.method,
                    request.url,
                    json=request.json if request.method != "DELETE" else None,
                    headers=headers,
                )
            except httpx.TransportError as exc:  # timeouts, refused connections, broken streams
                last_error, hint = f"{what} failed: {exc.__class__.__name__}: {exc}", None
            except TrackerUnavailableError as exc:  # the probe could not tell
                last_error, hint = str(exc), exc.retry_after
            else:
                if response.status_code in request.ok:
                    return response
                hint = wait_hint(response)
                status = response.status_code
                last_error = f"{what} answered {status}: {response.text[:_EXCERPT]}"
                if not _retryable(status, hint):
                    raise TrackerRejectedError(last_error)
            if attempt == self.policy.attempts - 1:
                break
            delay = hint if hint is not None else random.uniform(0, self.policy.backoff * 2**attempt)
            if delay > self.policy.max_wait:
                raise TrackerUnavailableError(f"{last_error} (asked to wait {delay:.0f} s)", retry_after=delay)
            WRITEBACKS.labels(tracker or "unknown", "retried").inc()
            await self._sleep(delay)
        raise TrackerUnavailableError(
            f"{last_error} (after {self.policy.attempts} attempt{'s' if self.policy.attempts > 1 else ''})",
            retry_after=hint,
        )

    async def _already_applied(self, request: PlannedRequest, headers: dict[str, str]) -> httpx.Response | None:
        """The probe's answer when it shows the request's marker (already applied), else None."""
        assert request.probe is not None and request.marker is not None
        response = await self.client.get(request.probe, headers=headers)
        if response.status_code != 200:
            raise TrackerUnavailableError(
                f"GET {request.probe} answered {response.status_code}: cannot tell whether"
                f" {request.method} {request.url} was applied",
                retry_after=wait_hint(response),
            )
        return response if request.marker in response.text else None


def _retryable(status: int, hint: float | None) -> bool:
    # GitHub answers an exhausted (secondary) rate limit with 403 and says so in its headers.
    return status in (408, 429) or status >= 500 or (status == 403 and hint is not None)


def wait_hint(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the tracker asks us to wait: ``Retry-After``, else the reset of an exhausted rate limit."""
    current = time.time() if now is None else now
    headers = response.headers
    retry_after = headers.get("retry-after")
    if retry_after:
        value = retry_after.strip()
        try:
            return max(0.0, float(value))  # the standard says whole seconds; some send fractions
        except ValueError:
            pass
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - current)
        except (TypeError, ValueError):
            pass
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset"))
    if remaining is not None and remaining.strip() == "0" and reset:
        at = _instant(reset.strip())
        if at is not None:
            return max(0.0, at - current)
    return None


def _instant(value: str) -> float | None:
    """Epoch seconds (GitHub, GitLab) or an ISO 8601 time (Jira) as epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
