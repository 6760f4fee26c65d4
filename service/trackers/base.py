"""What every tracker module provides, and the types they share.

A tracker module (``github``, ``gitlab``, ``jira``) holds everything the service knows about one
issue tracker: its settings group, how its deliveries are authenticated and named, its payload
Structs and which of its events mean what, the REST requests that label and comment on a
ticket, and the headers that authenticate those requests. The rest of the service talks to a
tracker only through the ``Tracker`` protocol below, the way httpx talks to a transport only
through ``handle_request``; ``registry`` lists the modules once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec

from service.config import WriteBackMode
from service.trackers.errors import InvalidPayloadError, MalformedPayloadError

__all__ = [
    "Answer",
    "Classify",
    "Closed",
    "Ignore",
    "Interpreted",
    "PlannedRequest",
    "Relabel",
    "Ticket",
    "Tracker",
    "TrackerFacts",
    "TrackerSettings",
    "TrackerType",
    "Verdict",
    "decode_payload",
    "web_link",
]

USER_AGENT = "ticket-router/0.1.0"


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    """The settings group of one tracker; each tracker module subclasses it with its own fields.

    Field ``x`` of tracker ``t`` is read from ``TICKET_ROUTER_<T>_<X>``.
    """

    # The variables that enable the tracker's webhooks, as an operator should read them.
    secret_variables: ClassVar[str] = ""

    write_back: WriteBackMode | None = None

    @property
    def secured(self) -> bool:
        """Whether a webhook secret is configured, so that deliveries can be verified."""
        raise NotImplementedError

    @property
    def bot(self) -> str | None:
        """Our own account on the tracker, whose events are ignored."""
        raise NotImplementedError

    def missing_credentials(self) -> list[str]:
        """The variables that write-back needs and that are unset."""
        raise NotImplementedError

    def problems(self) -> list[str]:
        """What makes these settings unusable (a malformed secret, say); empty when they are fine."""
        return []

    def replace(self, **changes: Any) -> TrackerSettings:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket as the router sees it: reference, text, labels, where it was filed, its web page and its author."""

    ref: str
    title: str | None
    body: str | None
    labels: tuple[str, ...]
    repository: str | None = None
    url: str | None = None
    author: str | None = None

    @property
    def has_text(self) -> bool:
        """Whether there is anything to classify."""
        return any(part and part.strip() for part in (self.title, self.body))


@dataclass(frozen=True, slots=True)
class Ignore:
    """Answer 2xx, record the delivery as ignored with ``reason``, do nothing else."""

    reason: str


@dataclass(frozen=True, slots=True)
class Classify:
    """Decide the team of ``ticket`` and write it back."""

    ticket: Ticket


@dataclass(frozen=True, slots=True)
class Relabel:
    """Someone other than us added ``added`` labels; ``text_changed`` when the same event edited the text."""

    ticket: Ticket
    added: tuple[str, ...]
    actor: str
    text_changed: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """Someone other than us commented ``text`` on ``ticket``: an answer, if we asked a question there."""

    ticket: Ticket
    text: str
    actor: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The ticket was closed; its labels at closing say which team finally owned it."""

    ticket: Ticket


Verdict = Ignore | Classify | Relabel | Answer | Closed


@dataclass(frozen=True, slots=True)
class Interpreted:
    """A delivery's event, action, ticket reference and what to do with it."""

    event: str
    action: str | None
    ticket_ref: str | None
    verdict: Verdict


class PlannedRequest(msgspec.Struct, frozen=True):
    """One request to a tracker: method, absolute URL, JSON body and the statuses that mean success.

    A request that must not be applied twice (a comment) carries a ``marker``, text that its
    effect shows (our decision id in the comment), and a ``probe``, a URL listing recent effects:
    before sending it again, the sender looks for the marker there.
    """

    method: str
    url: str
    json: dict[str, Any]
    ok: tuple[int, ...] = (200, 201, 204)
    marker: str | None = None
    probe: str | None = None


class TrackerFacts(Protocol):
    """What is known of a tracker before it is configured: its names and its webhook's shape."""

    @property
    def name(self) -> str:
        """The stable name: in ticket references, routes, stored rows, metrics and variable names."""

    @property
    def display_name(self) -> str:
        """The name people read."""

    @property
    def delivery_headers(self) -> tuple[str, ...]:
        """The headers that name a delivery, most specific first; each is the same on a redelivery."""

    @property
    def route_summary(self) -> str:
        """The OpenAPI summary of the webhook route: what it receives."""

    @property
    def auth_description(self) -> str:
        """How deliveries are authenticated, for the OpenAPI description."""


class Tracker(TrackerFacts, Protocol):
    """One issue tracker, as the intake, the write-back worker and the routes use it."""

    @property
    def settings(self) -> TrackerSettings:
        """This tracker's settings group."""

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise ``SignatureError`` unless the delivery is authentic (only called when ``settings.secured``)."""

    def interpret(self, headers: Mapping[str, str], body: bytes) -> Interpreted:
        """The verdict for a verified delivery; ``MalformedPayloadError``/``InvalidPayloadError`` for bad bodies."""

    def label_requests(self, ticket_ref: str, add: str | None, remove: list[str]) -> list[PlannedRequest]:
        """The requests that add ``add`` and remove ``remove`` (labels we set before) on a ticket."""

    def comment_request(self, ticket_ref: str, text: str, marker: str) -> PlannedRequest:
        """The request that posts ``text`` (which contains ``marker``) as a comment, with a probe for it."""

    def target(self, ticket_ref: str) -> str:
        """The repository or project a ticket's write-backs go to: they share a concurrency budget."""

    def auth_headers(self) -> dict[str, str] | None:
        """The headers that authenticate us to the tracker, or None when its credentials are not set."""

    def web_url(self, ticket_ref: str) -> str | None:
        """The page where a person reads the ticket, when the reference alone says where (else None)."""


class TrackerType(TrackerFacts, Protocol):
    """A tracker class as the registry knows it: its facts, its settings group, and how to build it."""

    @property
    def settings_type(self) -> type[TrackerSettings]:
        """The dataclass of its ``TICKET_ROUTER_<TRACKER>_*`` variables."""

    def __call__(self, settings: Any) -> Tracker:
        """Build the tracker from its settings group."""


T = TypeVar("T")


def decode_payload(body: bytes, kind: type[T]) -> T:
    """Decode a verified delivery into the tracker's Struct; bad JSON and wrong shapes are domain errors."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidPayloadError(f"the delivery does not have the expected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedPayloadError(f"the delivery body is not valid JSON: {exc}") from None


def web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) address a page may link to, else None (a payload may carry anything)."""
    if url and url.startswith(("https://", "http://")) and len(url) <= 2000 and not any(c.isspace() for c in url):
        return url
    return None
