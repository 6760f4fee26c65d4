"""Authentication of deliveries, on the raw request bytes and in constant time.

GitHub signs the body with ``X-Hub-Signature-256: sha256=<hex>``, Jira admin webhooks with
``X-Hub-Signature: sha256=<hex>`` (same scheme, no ``-256``). GitLab sends its secret token as
is in ``X-Gitlab-Token`` and, with a signing token, ``webhook-signature: v1,<base64>`` over
``{webhook-id}.{webhook-timestamp}.{body}`` (the Standard Webhooks scheme).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

from service.trackers.errors import SignatureError

__all__ = [
    "gitlab_signature",
    "hub_signature",
    "signing_key",
    "verify_gitlab_signature",
    "verify_gitlab_token",
    "verify_hub_signature",
]


def signing_key(token: str) -> bytes | None:
    """The HMAC key of a GitLab signing token (``whsec_`` then base64), or None when it is not one."""
    try:
        key = base64.b64decode(token.removeprefix("whsec_"), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def hub_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256(secret, body)>``, as GitHub and Jira send it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hub_signature(secret: str, body: bytes, header: str | None, header_name: str) -> None:
    """Raise ``SignatureError`` unless ``header`` is the body's ``sha256=`` HMAC under ``secret``."""
    if not header:
        raise SignatureError(f"missing {header_name} header")
    method, _, value = header.strip().partition("=")
    if method.lower() != "sha256" or not value:
        raise SignatureError(f"{header_name} must be sha256=<hex digest>")
    expected = hub_signature(secret, body).removeprefix("sha256=")
    if not hmac.compare_digest(expected.encode(), value.strip().lower().encode()):
        raise SignatureError(f"{header_name} does not match the body")


def verify_gitlab_token(expected: str, provided: str | None) -> None:
    """Raise ``SignatureError`` unless ``provided`` is the configured secret token."""
    if not provided:
        raise SignatureError("missing X-Gitlab-Token header")
    # Compare digests, so neither the content nor the length of the secret shows in the timing.
    if not hmac.compare_digest(_digest(expected), _digest(provided)):
        raise SignatureError("X-Gitlab-Token does not match")


def gitlab_signature(token: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`` for a ``whsec_`` signing token."""
    key = signing_key(token)
    if key is None:
        raise ValueError("not a signing token")
    message = webhook_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def verify_gitlab_signature(
    token: str,
    body: bytes,
    webhook_id: str | None,
    timestamp: str | None,
    signatures: str | None,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise ``SignatureError`` unless one of the ``webhook-signature`` entries signs this delivery in time."""
    if not webhook_id or not timestamp or not signatures:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise SignatureError("webhook-timestamp must be whole seconds since the epoch") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise SignatureError(f"webhook-timestamp is more than {tolerance:g} s away from our clock")
    expected = gitlab_signature(token, webhook_id, timestamp, body).encode()
    # Several space-separated signatures may be sent while a token rotates; check every one.
    found = False
    for candidate in signatures.split():
        found |= hmac.compare_digest(expected, candidate.encode())
    if not found:
        raise SignatureError("webhook-signature does not match the body")


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()
