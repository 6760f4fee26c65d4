"""Ticket text: how a title and body become the one string the model reads."""

from __future__ import annotations

import hashlib
import re

__all__ = ["compose", "fingerprint", "normalise", "text_sha256"]

# A lower-case letter or digit followed by a capital: the seam of a camelCase identifier.
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
_SPACES = re.compile(r"\s+")


def compose(title: str | None, body: str | None) -> str:
    """Join a ticket's title and body; the title is repeated because it is the densest evidence."""
    title = (title or "").strip()
    body = (body or "").strip()
    if title and body:
        return f"{title}\n{title}\n{body}"
    return title or body


def normalise(text: str) -> str:
    """The vectorizer's preprocessor: split identifiers into words and lowercase.

    ``CrashLoopBackOff`` and ``http_requests_total`` become words the way people write
    them in prose, so a class or metric name counts as evidence for the words it is made of
    (runs of capitals stay together: ``OOMKilled`` becomes ``oomkilled``).
    """
    return _CAMEL.sub(_split_pair, text.replace("_", " ").replace("\\", " ")).lower()


def _split_pair(match: re.Match[str]) -> str:
    pair = match.group()
    return f"{pair[0]} {pair[1]}"


def fingerprint(text: str) -> str:
    """sha256 of the text with case and whitespace folded: equal for duplicates, safe to store."""
    folded = _SPACES.sub(" ", text).strip().casefold()
    return hashlib.sha256(folded.encode("utf-8")).hexdigest()


def text_sha256(text: str) -> str:
    """sha256 of the exact text: how the audit trail and corrections name a ticket without storing it.

    Lone surrogates (which JSON can carry) are kept as they are rather than refused.
    """
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
