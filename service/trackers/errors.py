"""Errors of tracker deliveries and write-backs.

They become HTTP responses only through the table in ``service/errors.py``::

    WebhookError
    ├── TrackerDisabledError     the tracker has no webhook secret configured (404)
    ├── SignatureError           the signature or token is missing or wrong (401)
    ├── MalformedPayloadError    the verified body is not JSON (400)
    ├── InvalidPayloadError      the verified body is JSON but not the tracker's shape (422)
    └── WriteBackError           a request to a tracker failed (never an HTTP answer of ours)
        ├── TrackerRejectedError     the tracker refused it (4xx): retrying will not help
        └── TrackerUnavailableError  429, 5xx, timeout or network error after bounded retries
"""

from __future__ import annotations

__all__ = [
    "InvalidPayloadError",
    "MalformedPayloadError",
    "SignatureError",
    "TrackerDisabledError",
    "TrackerRejectedError",
    "TrackerUnavailableError",
    "WebhookError",
    "WriteBackError",
]


class WebhookError(Exception):
    """Base of the webhook errors."""


class TrackerDisabledError(WebhookError):
    """Raised when a delivery arrives for a tracker whose webhook secret is not configured."""


class SignatureError(WebhookError):
    """Raised when a delivery's signature or token is missing, malformed or wrong."""


class MalformedPayloadError(WebhookError):
    """Raised when a verified delivery's body is not JSON at all."""


class InvalidPayloadError(WebhookError):
    """Raised when a verified delivery's JSON lacks a field we need or has it with the wrong type."""


class WriteBackError(WebhookError):
    """Raised when a request to a tracker's REST API does not succeed."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TrackerRejectedError(WriteBackError):
    """Raised when the tracker answers 4xx (bad token, no permission, no such issue): retrying will not help."""


class TrackerUnavailableError(WriteBackError):
    """Raised when 429, 5xx, a timeout or a network error outlasts the bounded retries; retried later."""
