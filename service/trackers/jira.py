"""Jira Cloud: admin webhooks signed with ``X-Hub-Signature``, labels and comments over REST API v3.

- Events: ``jira:issue_created``, and ``jira:issue_updated`` whose changelog has ``summary`` or
  ``description``; a ``labels`` item may be a correction; a ``resolution`` set tells the team the
  ticket ended with. ``comment_created`` may answer our question.
- Requests: ``PUT {site}/rest/api/3/issue/{key}`` ``{"update": {"labels": [...]}}``, a comment
  ``POST .../issue/{key}/comment`` with an Atlassian Document Format body.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar
from urllib.parse import quote

import msgspec
from msgspec import Meta

from service.config import PREFIX, secret
from service.trackers.adf import AdfNode, adf_to_text
from service.trackers.base import (
    USER_AGENT,
    Answer,
    Classify,
    Closed,
    Ignore,
    Interpreted,
    PlannedRequest,
    Relabel,
    Ticket,
    TrackerSettings,
    Verdict,
    decode_payload,
    web_link,
)
from service.trackers.errors import InvalidPayloadError
from service.trackers.signatures import verify_hub_signature

__all__ = ["Jira", "JiraIssueEvent", "JiraSettings"]

NAME = "jira"
TEXT_FIELDS = {"summary", "description"}


@dataclass(frozen=True, slots=True)
class JiraSettings(TrackerSettings):
    """``TICKET_ROUTER_JIRA_*``: the webhook secret, the site and the account write-back uses."""

    secret_variables: ClassVar[str] = f"{PREFIX}JIRA_WEBHOOK_SECRET"

    webhook_secret: str | None = secret()
    url: str | None = None
    email: str | None = None
    api_token: str | None = secret()
    bot_account_id: str | None = None

    @property
    def secured(self) -> bool:
        """Deliveries are verified when the webhook secret is set."""
        return bool(self.webhook_secret)

    @property
    def bot(self) -> str | None:
        """Our account's id."""
        return self.bot_account_id

    def missing_credentials(self) -> list[str]:
        """The site, and the e-mail and API token of the account that writes."""
        needed = [("URL", self.url), ("EMAIL", self.email), ("API_TOKEN", self.api_token)]
        return [f"{PREFIX}JIRA_{name}" for name, value in needed if not value]


# -- payloads: only the fields we read, unknown fields ignored -----------------------------------

# A project key (a letter, then letters, digits, '_') and a number: nothing else may reach a URL
# that carries our credentials.
KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,99}-[1-9][0-9]{0,9}$"
JiraKey = Annotated[str, Meta(pattern=KEY_PATTERN, max_length=111)]
_KEY = re.compile(KEY_PATTERN)


class JiraUser(msgspec.Struct, rename="camel"):
    """The account that caused the event; ``account_type`` is ``app`` for apps."""

    account_id: Annotated[str, Meta(max_length=200)] | None = None
    account_type: str | None = None
    display_name: Annotated[str, Meta(max_length=200)] | None = None


class JiraFields(msgspec.Struct):
    """The issue fields we read; ``description`` is wiki markup, an ADF tree, or null."""

    summary: str | None = None
    description: str | AdfNode | None = None
    labels: list[str] = []
    reporter: JiraUser | None = None


class JiraIssue(msgspec.Struct):
    """The issue, by key (``OPS-12``)."""

    key: JiraKey
    fields: JiraFields = msgspec.field(default_factory=JiraFields)


class JiraChangeItem(msgspec.Struct, rename="camel"):
    """One changed field; ``field_id`` is stable (``summary``, ``description``, ``labels``)."""

    field: str | None = None
    field_id: str | None = None
    from_string: str | None = None
    to_string: str | None = None

    @property
    def key(self) -> str:
        """The field's id, or its name on sites that leave the id out."""
        return self.field_id or self.field or ""


class JiraChangelog(msgspec.Struct):
    """The fields an update changed."""

    items: list[JiraChangeItem] = []


class JiraComment(msgspec.Struct):
    """A comment: its body (wiki markup or an ADF tree) and who wrote it."""

    body: str | AdfNode | None = None
    author: JiraUser | None = None


class JiraIssueEvent(msgspec.Struct, rename="camel"):
    """An issue event: ``webhook_event`` is ``jira:issue_created``, ``jira:issue_updated``, ``comment_created``..."""

    webhook_event: str
    issue: JiraIssue | None = None
    user: JiraUser | None = None
    changelog: JiraChangelog | None = None
    comment: JiraComment | None = None


class _Envelope(msgspec.Struct, rename="camel"):
    webhook_event: str = ""


# -- the tracker ---------------------------------------------------------------------------------


class Jira:
    """Jira Cloud (``TICKET_ROUTER_JIRA_URL`` is the site, e.g. ``https://acme.atlassian.net``)."""

    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "Jira"
    settings_type: ClassVar[type[TrackerSettings]] = JiraSettings
    delivery_headers: ClassVar[tuple[str, ...]] = ("x-atlassian-webhook-identifier",)
    route_summary: ClassVar[str] = "Jira Cloud webhook (issue created and updated, comment created)"
    auth_description: ClassVar[str] = "`X-Hub-Signature`"

    def __init__(self, settings: JiraSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> JiraSettings:
        """``TICKET_ROUTER_JIRA_*``."""
        return self._settings

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """The body's HMAC-SHA256 under the webhook secret, in ``X-Hub-Signature``."""
        if self._settings.webhook_secret:
            verify_hub_signature(self._settings.webhook_secret, body, headers.get("x-hub-signature"), "X-Hub-Signature")

    def interpret(self, headers: Mapping[str, str], body: bytes) -> Interpreted:
        """Created and updated issues; the event's name is in the body, not a header."""
        event = decode_payload(body, _Envelope).webhook_event
        if event not in ("jira:issue_created", "jira:issue_updated", "comment_created"):
            return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
        payload = decode_payload(body, JiraIssueEvent)
        if payload.issue is None:
            raise InvalidPayloadError(f"a {event} delivery without `issue`")
        fields = payload.issue.fields
        ref = f"{NAME}:{payload.issue.key}"
        project = payload.issue.key.rsplit("-", 1)[0]
        labels = tuple(fields.labels)
        author = fields.reporter.account_id if fields.reporter is not None else None
        ticket = Ticket(ref, fields.summary, _text(fields.description), labels, project, self.web_url(ref), author)

        def verdict(v: Verdict) -> Interpreted:
            return Interpreted(event, None, ref, v)

        actor = payload.user.account_id if payload.user and payload.user.account_id else ""
        comment = payload.comment
        if comment is not None and comment.author is not None and comment.author.account_id:
            actor = comment.author.account_id
        bot = self._settings.bot_account_id
        if bot and actor == bot:
            return verdict(Ignore(f"caused by our own account {actor}"))
        if event == "jira:issue_created":
            return verdict(Classify(ticket))
        if event == "comment_created":
            if comment is None:
                raise InvalidPayloadError("a comment_created delivery without `comment`")
            return verdict(Answer(ticket, _text(comment.body) or "", actor))
        items = payload.changelog.items if payload.changelog else []
        text_changed = any(item.key in TEXT_FIELDS for item in items)
        added: list[str] = []
        for item in items:
            if item.key == "labels":
                before = set((item.from_string or "").split())
                added += [label for label in (item.to_string or "").split() if label not in before]
        if added:
            name = payload.user.display_name if payload.user and payload.user.display_name else None
            return verdict(Relabel(ticket, tuple(added), actor or name or "", text_changed))
        if text_changed:
            return verdict(Classify(ticket))
        if any(item.key == "resolution" and item.to_string for item in items):
            return verdict(Closed(ticket))
        return verdict(Ignore("the update changed neither the summary nor the description"))

    def _issue_url(self, ticket_ref: str) -> str:
        """``{site}/rest/api/3/issue/{key}``, the key checked again and encoded."""
        key = ticket_ref.removeprefix(f"{NAME}:")
        if not ticket_ref.startswith(f"{NAME}:") or _KEY.match(key) is None:
            raise InvalidPayloadError(f"not a Jira issue reference: {ticket_ref[:100]!r}")
        return f"{(self._settings.url or '').rstrip('/')}/rest/api/3/issue/{quote(key, safe='')}"

    def target(self, ticket_ref: str) -> str:
        """The project, ``jira:<KEY>``."""
        return ticket_ref.rpartition("-")[0]

    def label_requests(self, ticket_ref: str, add: str | None, remove: list[str]) -> list[PlannedRequest]:
        """One PUT with label operations: removals first, then the addition."""
        operations: list[dict[str, str]] = [{"remove": name} for name in remove]
        if add:
            operations.append({"add": add})
        if not operations:
            return []
        return [PlannedRequest("PUT", self._issue_url(ticket_ref), {"update": {"labels": operations}})]

    def comment_request(self, ticket_ref: str, text: str, marker: str) -> PlannedRequest:
        """A comment whose body is an Atlassian Document Format tree, a paragraph a line; the probe lists the newest."""
        paragraphs = [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.split("\n") if line
        ]
        body = {"body": {"type": "doc", "version": 1, "content": paragraphs}}
        comments = f"{self._issue_url(ticket_ref)}/comment"
        probe = f"{comments}?orderBy=-created&maxResults=100"
        return PlannedRequest("POST", comments, body, marker=marker, probe=probe)

    def auth_headers(self) -> dict[str, str] | None:
        """Basic authentication with the account's e-mail and API token."""
        s = self._settings
        if not (s.url and s.email and s.api_token):
            return None
        basic = base64.b64encode(f"{s.email}:{s.api_token}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Accept": "application/json", "User-Agent": USER_AGENT}

    def web_url(self, ticket_ref: str) -> str | None:
        """``{site}/browse/{key}`` when the site is configured."""
        site = self._settings.url
        return web_link(f"{site.rstrip('/')}/browse/{ticket_ref.removeprefix(f'{NAME}:')}") if site else None


def _text(description: str | AdfNode | None) -> str | None:
    """Webhooks send wiki markup (or null); REST v3 sends an ADF tree: both become text."""
    if isinstance(description, AdfNode):
        return adf_to_text(description)
    return description
