"""GitLab: issue and work item hooks with a secret token and/or a signing token, labels and notes over REST.

- Events: ``Issue Hook``, ``Confidential Issue Hook`` and ``Work Item Hook`` (issues and work
  items): ``open``, ``reopen``, and ``update`` with ``changes.title`` or ``changes.description``
  are classified; an ``update`` adding labels may be a correction; ``close`` tells the team the
  ticket ended with. ``Note Hook`` on an issue may answer our question.
- Requests: ``PUT {base}/api/v4/projects/{id}/issues/{iid}`` with ``add_labels``/``remove_labels``,
  a comment ``POST .../issues/{iid}/notes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import Meta

from service.config import PREFIX, secret
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
from service.trackers.signatures import signing_key, verify_gitlab_signature, verify_gitlab_token

__all__ = ["GitLab", "GitLabIssueEvent", "GitLabSettings"]

NAME = "gitlab"
ISSUE_HOOKS = {"issue hook", "confidential issue hook", "work item hook"}
NOTE_HOOKS = {"note hook", "confidential note hook"}
KINDS = {"issue", "work_item"}


@dataclass(frozen=True, slots=True)
class GitLabSettings(TrackerSettings):
    """``TICKET_ROUTER_GITLAB_*``: the webhook's secret and signing tokens, the API token and the instance."""

    secret_variables: ClassVar[str] = f"{PREFIX}GITLAB_WEBHOOK_TOKEN or {PREFIX}GITLAB_SIGNING_TOKEN"

    webhook_token: str | None = secret()
    signing_token: str | None = secret()
    token: str | None = secret()
    url: str = "https://gitlab.com"
    bot_username: str | None = None
    signature_tolerance_seconds: int = 300

    @property
    def secured(self) -> bool:
        """Deliveries are verified with the secret token, the signing token, or both."""
        return bool(self.webhook_token or self.signing_token)

    @property
    def bot(self) -> str | None:
        """Our account's username."""
        return self.bot_username

    def missing_credentials(self) -> list[str]:
        """A personal, project or group access token with the ``api`` scope."""
        return [] if self.token else [f"{PREFIX}GITLAB_TOKEN"]

    def problems(self) -> list[str]:
        """A signing token must decode to a key; the clock tolerance must be positive."""
        found = []
        if self.signing_token and signing_key(self.signing_token) is None:
            found.append(f"{PREFIX}GITLAB_SIGNING_TOKEN must be the signing token GitLab shows (whsec_ and base64)")
        if self.signature_tolerance_seconds < 1:
            found.append(f"{PREFIX}GITLAB_SIGNATURE_TOLERANCE_SECONDS must be at least 1")
        return found


# -- payloads: only the fields we read, unknown fields ignored -----------------------------------

# Project ids and issue iids are numbers: nothing else may reach a URL that carries our token.
IssueNumber = Annotated[int, Meta(ge=1, le=2_147_483_647)]


class GitLabUser(msgspec.Struct):
    """The account that caused the event."""

    username: Annotated[str, Meta(max_length=200)] = ""


class GitLabLabel(msgspec.Struct):
    """A label; GitLab names it ``title``."""

    title: str


class GitLabProject(msgspec.Struct):
    """The project the issue or work item belongs to."""

    id: IssueNumber
    path_with_namespace: str | None = None


class GitLabAttributes(msgspec.Struct):
    """The issue or work item; ``iid`` is its number within the project, ``type`` its work item type."""

    iid: IssueNumber
    title: str | None = None
    description: str | None = None
    action: str | None = None
    confidential: bool = False
    type: str | None = None
    labels: list[GitLabLabel] | None = None
    url: str | None = None


class GitLabTextChange(msgspec.Struct):
    """A changed text field's previous and current value."""

    previous: str | None = None
    current: str | None = None


class GitLabLabelsChange(msgspec.Struct):
    """The labels before and after an update."""

    previous: list[GitLabLabel] = []
    current: list[GitLabLabel] = []


class GitLabChanges(msgspec.Struct):
    """What an ``update`` changed (only the fields we read)."""

    title: GitLabTextChange | None = None
    description: GitLabTextChange | None = None
    labels: GitLabLabelsChange | None = None


class GitLabIssueEvent(msgspec.Struct):
    """An issue or work item event; ``object_attributes.action`` says what happened."""

    object_kind: str
    object_attributes: GitLabAttributes
    event_type: str | None = None
    user: GitLabUser | None = None
    project: GitLabProject | None = None
    labels: list[GitLabLabel] | None = None
    changes: GitLabChanges | None = None


class GitLabNote(msgspec.Struct):
    """A comment (note) and what it is on."""

    note: str | None = None
    noteable_type: str | None = None


class GitLabNoteEvent(msgspec.Struct):
    """A ``Note Hook`` event: ``object_attributes`` is the note, ``issue`` the issue it is on (if it is)."""

    object_attributes: GitLabNote
    user: GitLabUser | None = None
    project: GitLabProject | None = None
    issue: GitLabAttributes | None = None


class _Envelope(msgspec.Struct):
    object_kind: str = ""


# -- the tracker ---------------------------------------------------------------------------------


class GitLab:
    """GitLab.com or a self-managed instance (``TICKET_ROUTER_GITLAB_URL``)."""

    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "GitLab"
    settings_type: ClassVar[type[TrackerSettings]] = GitLabSettings
    delivery_headers: ClassVar[tuple[str, ...]] = ("idempotency-key", "webhook-id", "x-gitlab-event-uuid")
    route_summary: ClassVar[str] = "GitLab webhook (issue, work item and note events)"
    auth_description: ClassVar[str] = "`X-Gitlab-Token` and/or the signing token's `webhook-signature`"

    def __init__(self, settings: GitLabSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> GitLabSettings:
        """``TICKET_ROUTER_GITLAB_*``."""
        return self._settings

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Each configured mechanism must pass: a leaked secret token alone does not forge a signature."""
        s = self._settings
        if s.webhook_token:
            verify_gitlab_token(s.webhook_token, headers.get("x-gitlab-token"))
        if s.signing_token:
            verify_gitlab_signature(
                s.signing_token,
                body,
                headers.get("webhook-id"),
                headers.get("webhook-timestamp"),
                headers.get("webhook-signature"),
                s.signature_tolerance_seconds,
            )

    def interpret(self, headers: Mapping[str, str], body: bytes) -> Interpreted:
        """Issue and work item hooks by action; group-level work items have no project to label."""
        event = headers.get("x-gitlab-event") or ""
        if event.casefold() in NOTE_HOOKS:
            return self._note(event, body)
        if event.casefold() not in ISSUE_HOOKS:
            return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
        kind = decode_payload(body, _Envelope).object_kind
        if kind not in KINDS:
            return Interpreted(event, None, None, Ignore(f"object kind {kind!r} is not classified"))
        payload = decode_payload(body, GitLabIssueEvent)
        item = payload.object_attributes
        action = item.action
        if payload.project is None:
            return Interpreted(
                event, action, None, Ignore(f"group-level {item.type or 'work item'} has no project issue to label")
            )
        ref = f"{NAME}:{payload.project.id}#{item.iid}"
        labels = payload.labels if payload.labels is not None else (item.labels or [])
        names = tuple(label.title for label in labels)
        actor = payload.user.username if payload.user else ""
        # GitLab names only the author's id; the user who opened the item is its author.
        author = (actor or None) if action == "open" else None
        project = payload.project.path_with_namespace
        ticket = Ticket(ref, item.title, item.description, names, project, web_link(item.url), author)

        def verdict(v: Verdict) -> Interpreted:
            return Interpreted(event, action, ref, v)

        if self._is_us(actor):
            return verdict(Ignore(f"caused by our own account {actor}"))
        if action in ("open", "reopen"):
            return verdict(Classify(ticket))
        if action == "close":
            return verdict(Closed(ticket))
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

    def _is_us(self, actor: str) -> bool:
        bot = self._settings.bot_username
        return bool(bot) and actor.casefold() == (bot or "").casefold()

    def _note(self, event: str, body: bytes) -> Interpreted:
        """A note on a project issue may answer the question we asked there."""
        payload = decode_payload(body, GitLabNoteEvent)
        note = payload.object_attributes
        if note.noteable_type not in ("Issue", "WorkItem") or payload.issue is None or payload.project is None:
            return Interpreted(
                event, None, None, Ignore(f"a note on {note.noteable_type or 'something'}, not an issue")
            )
        item = payload.issue
        ref = f"{NAME}:{payload.project.id}#{item.iid}"
        names = tuple(label.title for label in item.labels or [])
        ticket = Ticket(ref, item.title, item.description, names, payload.project.path_with_namespace)
        actor = payload.user.username if payload.user else ""
        if self._is_us(actor):
            return Interpreted(event, "note", ref, Ignore(f"caused by our own account {actor}"))
        return Interpreted(event, "note", ref, Answer(ticket, note.note or "", actor))

    def _issue_url(self, ticket_ref: str) -> str:
        """``{base}/api/v4/projects/{id}/issues/{iid}``, both numbers checked again."""
        project, _, iid = ticket_ref.removeprefix(f"{NAME}:").rpartition("#")
        if not (ticket_ref.startswith(f"{NAME}:") and _number(project) and _number(iid)):
            raise InvalidPayloadError(f"not a GitLab issue reference: {ticket_ref[:100]!r}")
        return f"{self._settings.url.rstrip('/')}/api/v4/projects/{project}/issues/{iid}"

    def target(self, ticket_ref: str) -> str:
        """The project, ``gitlab:<id>``."""
        return ticket_ref.rpartition("#")[0]

    def label_requests(self, ticket_ref: str, add: str | None, remove: list[str]) -> list[PlannedRequest]:
        """One PUT that adds and removes labels together."""
        body: dict[str, Any] = {}
        if add:
            body["add_labels"] = add
        if remove:
            body["remove_labels"] = ",".join(remove)
        return [PlannedRequest("PUT", self._issue_url(ticket_ref), body)] if body else []

    def comment_request(self, ticket_ref: str, text: str, marker: str) -> PlannedRequest:
        """A note on the issue, in Markdown; the probe lists the newest notes."""
        notes = f"{self._issue_url(ticket_ref)}/notes"
        probe = f"{notes}?sort=desc&order_by=created_at&per_page=100"
        return PlannedRequest("POST", notes, {"body": text}, marker=marker, probe=probe)

    def web_url(self, ticket_ref: str) -> str | None:
        """Unknown from the reference alone (it holds the project's number, not its path); deliveries carry it."""
        return None

    def auth_headers(self) -> dict[str, str] | None:
        """The access token in ``PRIVATE-TOKEN``."""
        if not self._settings.token:
            return None
        return {"PRIVATE-TOKEN": self._settings.token, "User-Agent": USER_AGENT}


def _number(text: str) -> bool:
    return text.isascii() and text.isdigit() and 0 < len(text) <= 10 and text[0] != "0"


def _added(previous: list[GitLabLabel], current: list[GitLabLabel]) -> tuple[str, ...]:
    before = {label.title.casefold() for label in previous}
    return tuple(label.title for label in current if label.title.casefold() not in before)
