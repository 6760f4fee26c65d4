"""The policy: which deliveries are classified, which are corrections, which are ignored and why.

Pure functions from a verified body (and its event header) to a verdict; no store, no model.

- GitHub ``issues``: ``opened``, ``reopened`` and ``edited`` with ``changes.title`` or
  ``changes.body`` are classified; ``labeled`` may be a person's correction; everything else
  (``ping`` included) is ignored with its reason.
- GitLab ``Issue Hook`` and ``Confidential Issue Hook`` (issues and work items): ``open``,
  ``reopen`` and ``update`` with ``changes.title`` or ``changes.description``; an ``update``
  adding labels may be a correction.
- Jira: ``jira:issue_created``, and ``jira:issue_updated`` whose changelog has ``summary`` or
  ``description``; a ``labels`` item may be a correction.
- Events caused by our own account (configured per tracker) are ignored, so we never loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import msgspec

from service.webhooks.adf import AdfNode, adf_to_text
from service.webhooks.errors import InvalidPayloadError, MalformedPayloadError
from service.webhooks.payloads import (
    GitHubIssuesEvent,
    GitHubUser,
    GitLabIssueEvent,
    GitLabLabel,
    JiraIssueEvent,
)

__all__ = [
    "TRACKER_NAMES",
    "Classify",
    "Ignore",
    "Interpreted",
    "Relabel",
    "Ticket",
    "Tracker",
    "interpret",
]

Tracker = Literal["github", "gitlab", "jira"]
TRACKER_NAMES: dict[str, str] = {"github": "GitHub", "gitlab": "GitLab", "jira": "Jira"}

GITLAB_ISSUE_HOOKS = {"issue hook", "confidential issue hook", "work item hook"}
GITLAB_KINDS = {"issue", "work_item"}


@dataclass(frozen=True, slots=True)
class Ticket:
    """A ticket as the router sees it: reference, text and current labels."""

    ref: str
    title: str | None
    body: str | None
    labels: tuple[str, ...]

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
class Interpreted:
    """A delivery's event, action, ticket reference and what to do with it."""

    event: str
    action: str | None
    ticket_ref: str | None
    verdict: Ignore | Classify | Relabel


def interpret(tracker: Tracker, event_header: str | None, body: bytes, bot: str | None) -> Interpreted:
    """The verdict for a verified delivery; raises ``MalformedPayloadError``/``InvalidPayloadError``."""
    if tracker == "github":
        return _github(event_header or "", body, bot)
    if tracker == "gitlab":
        return _gitlab(event_header or "", body, bot)
    return _jira(body, bot)


# -- GitHub ---------------------------------------------------------------------------------


def _github(event: str, body: bytes, bot: str | None) -> Interpreted:
    if event == "ping":
        return Interpreted(event, None, None, Ignore("ping: the hook is set up"))
    if event != "issues":
        return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
    payload = _decode(body, GitHubIssuesEvent)
    issue = payload.issue
    ref = f"github:{payload.repository.full_name}#{issue.number}"
    ticket = Ticket(ref, issue.title, issue.body, tuple(label.name for label in issue.labels))
    action = payload.action

    def verdict(v: Ignore | Classify | Relabel) -> Interpreted:
        return Interpreted(event, action, ref, v)

    if _github_is_us(payload.sender, bot):
        return verdict(Ignore(f"caused by our own account {payload.sender.login}"))
    if action in ("opened", "reopened"):
        return verdict(Classify(ticket))
    if action == "edited":
        changes = payload.changes
        if changes is not None and (changes.title is not None or changes.body is not None):
            return verdict(Classify(ticket))
        return verdict(Ignore("the edit changed neither the title nor the body"))
    if action == "labeled" and payload.label is not None:
        return verdict(Relabel(ticket, (payload.label.name,), payload.sender.login))
    if action == "transferred":
        target = payload.changes.new_repository if payload.changes else None
        where = target.full_name if target else "another repository"
        # The destination gets its own `opened` event; classifying here would label a moved issue.
        return verdict(Ignore(f"transferred to {where}; its `opened` event there is the one classified"))
    return verdict(Ignore(f"action {action!r} is not classified"))


def _github_is_us(sender: GitHubUser, bot: str | None) -> bool:
    """Ours only when the login is the configured one; any app's login ends in ``[bot]``."""
    if not bot:
        return False
    login, wanted = sender.login.casefold(), bot.casefold()
    return login == wanted or (sender.type == "Bot" and login == f"{wanted.removesuffix('[bot]')}[bot]")


# -- GitLab ---------------------------------------------------------------------------------


class _GitLabEnvelope(msgspec.Struct):
    object_kind: str = ""


def _gitlab(event: str, body: bytes, bot: str | None) -> Interpreted:
    if event.casefold() not in GITLAB_ISSUE_HOOKS:
        return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
    kind = _decode(body, _GitLabEnvelope).object_kind
    if kind not in GITLAB_KINDS:
        return Interpreted(event, None, None, Ignore(f"object kind {kind!r} is not classified"))
    payload = _decode(body, GitLabIssueEvent)
    item = payload.object_attributes
    action = item.action
    if payload.project is None:
        return Interpreted(
            event, action, None, Ignore(f"group-level {item.type or 'work item'} has no project issue to label")
        )
    ref = f"gitlab:{payload.project.id}#{item.iid}"
    labels = payload.labels if payload.labels is not None else (item.labels or [])
    ticket = Ticket(ref, item.title, item.description, tuple(label.title for label in labels))

    def verdict(v: Ignore | Classify | Relabel) -> Interpreted:
        return Interpreted(event, action, ref, v)

    actor = payload.user.username if payload.user else ""
    if bot and actor.casefold() == bot.casefold():
        return verdict(Ignore(f"caused by our own account {actor}"))
    if action in ("open", "reopen"):
        return verdict(Classify(ticket))
    if action != "update":
        return verdict(Ignore(f"action {action!r} is not classified"))
    changes = payload.changes
    text_changed = changes is not None and any(
        change is not None and change.previous != change.current for change in (changes.title, changes.description)
    )
    if changes is not None and changes.labels is not None:
        added = _added(changes.labels.previous, changes.labels.current)
        if added:
            return verdict(Relabel(ticket, added, actor, text_changed))
    if text_changed:
        return verdict(Classify(ticket))
    return verdict(Ignore("the update changed neither the title nor the description"))


def _added(previous: list[GitLabLabel], current: list[GitLabLabel]) -> tuple[str, ...]:
    before = {label.title.casefold() for label in previous}
    return tuple(label.title for label in current if label.title.casefold() not in before)


# -- Jira -----------------------------------------------------------------------------------


class _JiraEnvelope(msgspec.Struct, rename="camel"):
    webhook_event: str = ""


JIRA_TEXT_FIELDS = {"summary", "description"}


def _jira(body: bytes, bot: str | None) -> Interpreted:
    event = _decode(body, _JiraEnvelope).webhook_event
    if event not in ("jira:issue_created", "jira:issue_updated"):
        return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
    payload = _decode(body, JiraIssueEvent)
    if payload.issue is None:
        raise InvalidPayloadError(f"a {event} delivery without `issue`")
    fields = payload.issue.fields
    ref = f"jira:{payload.issue.key}"
    ticket = Ticket(ref, fields.summary, _jira_text(fields.description), tuple(fields.labels))

    def verdict(v: Ignore | Classify | Relabel) -> Interpreted:
        return Interpreted(event, None, ref, v)

    actor = payload.user.account_id if payload.user and payload.user.account_id else ""
    if bot and actor == bot:
        return verdict(Ignore(f"caused by our own account {actor}"))
    if event == "jira:issue_created":
        return verdict(Classify(ticket))
    items = payload.changelog.items if payload.changelog else []
    text_changed = any(item.key in JIRA_TEXT_FIELDS for item in items)
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
    return verdict(Ignore("the update changed neither the summary nor the description"))


def _jira_text(description: str | AdfNode | None) -> str | None:
    """Webhooks send wiki markup (or null); REST v3 sends an ADF tree: both become text."""
    if isinstance(description, AdfNode):
        return adf_to_text(description)
    return description


# -- decoding -------------------------------------------------------------------------------

T = TypeVar("T")


def _decode(body: bytes, kind: type[T]) -> T:
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise InvalidPayloadError(f"the delivery does not have the expected shape: {exc}") from None
    except msgspec.DecodeError as exc:
        raise MalformedPayloadError(f"the delivery body is not valid JSON: {exc}") from None
