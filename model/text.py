"""Ticket text: how a title and body become the one string the model reads."""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "BODY_CHARS",
    "URL_TOKEN",
    "VERSION_TOKEN",
    "compose",
    "fingerprint",
    "model_text",
    "normalise",
    "normalise_versions",
    "text_sha256",
]

# A lower-case letter or digit followed by a capital: the seam of a camelCase identifier.
_CAMEL = re.compile(r"[a-z0-9][A-Z]")
_SPACES = re.compile(r"\s+")
# A release or version number: v1.2, 0.27, 1.23.13-k3s1, 2.6.5+build.7 (two parts or more).
_VERSION = re.compile(r"(?<![\w.])v?\d+(?:\.\d+)+(?:[-+][0-9A-Za-z][0-9A-Za-z.-]*)?(?![\w.])", re.IGNORECASE)
VERSION_TOKEN = "semver"  # noqa: S105 - a word, not a secret
# A web address: its pieces ("https", a host, "com", "pull", an owner and a project) say where
# a link points, not what the ticket is about, and repeat the repository where one is given.
_URL = re.compile(r"\b(?:https?|ftp)://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
URL_TOKEN = "hyperlink"  # noqa: S105 - a word, not a secret


def compose(title: str | None, body: str | None, repository: str | None = None) -> str:
    """Join a ticket's title and body; the title is repeated because it is the densest evidence.

    ``repository`` (``owner/name`` or a project path), when known, is read as more evidence:
    the same "Update README.md" means other work in a Helm chart than in a web shop.
    """
    title = (title or "").strip()
    body = (body or "").strip()
    text = f"{title}\n{title}\n{body}" if title and body else title or body
    place = (repository or "").strip()
    if place and text:
        return f"{text}\n\n{place}"
    return text


# The model reads this much of a body: the description comes first, then the logs, pasted
# output and template checklists, which say more about the reporter's tools than the owner.
BODY_CHARS = 1000


def model_text(title: str | None, body: str | None, repository: str | None = None) -> str:
    """What the model reads of a ticket: ``compose`` with the body cut to ``BODY_CHARS``."""
    return compose(title, (body or "")[:BODY_CHARS], repository)


def normalise(text: str) -> str:
    """The vectorizer's preprocessor: split identifiers into words and lowercase.

    ``CrashLoopBackOff`` and ``http_requests_total`` become words the way people write
    them in prose, so a class or metric name counts as evidence for the words it is made of
    (runs of capitals stay together: ``OOMKilled`` becomes ``oomkilled``).
    """
    return _CAMEL.sub(_split_pair, text.replace("_", " ").replace("\\", " ")).lower()


def normalise_versions(text: str) -> str:
    """``normalise`` with every version number read as one word, ``semver``, and every web address as ``hyperlink``.

    "Prepare v0.5.1", "Update to 1.23.13-k3s1" and "Bump x from 4.17.20 to 4.17.21" then share
    the evidence that a release or an upgrade is meant, whatever the numbers; "Cherry pick of
    https://github.com/org/metrics-server/pull/484" is read as a cherry-pick of a link, not as a
    ticket about metrics-server.
    """
    if "://" in text:
        text = _URL.sub(f" {URL_TOKEN} ", text)
    return normalise(_VERSION.sub(f" {VERSION_TOKEN} ", text))


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
