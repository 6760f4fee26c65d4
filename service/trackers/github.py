"""GitHub: ``issues`` webhooks signed with ``X-Hub-Signature-256``, labels and comments over the REST API.

- Events: ``issues`` ``opened``, ``reopened`` and ``edited`` with ``changes.title`` or
  ``changes.body`` are classified; ``labeled`` may be a person's correction; ``closed`` tells the
  team the ticket ended with; ``issue_comment`` ``created`` may answer our question; everything
  else (``ping`` included) is ignored with its reason.
- Requests: ``POST {api}/repos/{owner}/{repo}/issues/{n}/labels`` ``{"labels": [...]}``, a removal
  is ``DELETE .../labels/{name}``, a comment ``POST .../issues/{n}/comments``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, ClassVar
from urllib.parse import quote

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
from service.trackers.signatures import verify_hub_signature

__all__ = ["GitHub", "GitHubIssuesEvent", "GitHubPing", "GitHubSettings"]

NAME = "github"


@dataclass(frozen=True, slots=True)
class GitHubSettings(TrackerSettings):
    """``TICKET_ROUTER_GITHUB_*``: the webhook secret, the API token and where the API is."""

    secret_variables: ClassVar[str] = f"{PREFIX}GITHUB_WEBHOOK_SECRET"

    webhook_secret: str | None = secret()
    token: str | None = secret()
    api_url: str = "https://api.github.com"
    bot_login: str | None = None

    @property
    def secured(self) -> bool:
        """Deliveries are verified when the webhook secret is set."""
        return bool(self.webhook_secret)

    @property
    def bot(self) -> str | None:
        """Our app's or user's login."""
        return self.bot_login

    def missing_credentials(self) -> list[str]:
        """The API token is all write-back needs."""
        return [] if self.token else [f"{PREFIX}GITHUB_TOKEN"]


# -- payloads: only the fields we read, unknown fields ignored -----------------------------------

# What GitHub allows: an owner of letters, digits, hyphens (and underscores for managed users),
# a repository of letters, digits, '.', '-' and '_' that is not '.' or '..'. Nothing else may
# reach a URL that carries our token.
_OWNER = r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}"
_REPO = r"(?!\.{1,2}(?:#|$))[A-Za-z0-9._-]{1,100}"
REPO_PATTERN = rf"^{_OWNER}/{_REPO}$"
RepoName = Annotated[str, Meta(pattern=REPO_PATTERN, max_length=201)]
IssueNumber = Annotated[int, Meta(ge=1, le=2_147_483_647)]
_REF = re.compile(rf"^{NAME}:({_OWNER})/({_REPO})#([1-9][0-9]{{0,9}})$")


class GitHubUser(msgspec.Struct):
    """The account that caused the event; ``type`` is ``Bot`` for apps."""

    login: Annotated[str, Meta(max_length=200)] = ""
    type: Annotated[str, Meta(max_length=50)] = "User"


class GitHubLabel(msgspec.Struct):
    """A label on an issue."""

    name: str


class GitHubIssue(msgspec.Struct):
    """The issue; ``title`` and ``body`` may be null."""

    number: IssueNumber
    title: str | None = None
    body: str | None = None
    labels: list[GitHubLabel] = []
    html_url: str | None = None
    user: GitHubUser | None = None


class GitHubRepository(msgspec.Struct):
    """The repository, as ``owner/name``."""

    full_name: RepoName


class GitHubChange(msgspec.Struct):
    """A changed field's previous value."""

    from_: str | None = msgspec.field(name="from", default=None)


class GitHubChanges(msgspec.Struct):
    """What an ``edited`` action changed, or where a ``transferred`` issue went."""

    title: GitHubChange | None = None
    body: GitHubChange | None = None
    new_repository: GitHubRepository | None = None
    new_issue: GitHubIssue | None = None


class GitHubIssuesEvent(msgspec.Struct):
    """An ``issues`` event: ``action`` says what happened to ``issue``."""

    action: str
    issue: GitHubIssue
    repository: GitHubRepository
    sender: GitHubUser = msgspec.field(default_factory=GitHubUser)
    label: GitHubLabel | None = None
    changes: GitHubChanges | None = None


class GitHubComment(msgspec.Struct):
    """A comment on an issue."""

    body: str | None = None
    user: GitHubUser = msgspec.field(default_factory=GitHubUser)


class GitHubCommentEvent(msgspec.Struct):
    """An ``issue_comment`` event: ``action`` says what happened to ``comment`` on ``issue``."""

    action: str
    issue: GitHubIssue
    repository: GitHubRepository
    comment: GitHubComment
    sender: GitHubUser = msgspec.field(default_factory=GitHubUser)


class GitHubPing(msgspec.Struct):
    """The ``ping`` GitHub sends when a hook is created."""

    zen: str | None = None
    hook_id: int | None = None


# -- the tracker ---------------------------------------------------------------------------------


class GitHub:
    """GitHub.com or GitHub Enterprise Server (``TICKET_ROUTER_GITHUB_API_URL``)."""

    name: ClassVar[str] = NAME
    display_name: ClassVar[str] = "GitHub"
    settings_type: ClassVar[type[TrackerSettings]] = GitHubSettings
    delivery_headers: ClassVar[tuple[str, ...]] = ("x-github-delivery",)
    route_summary: ClassVar[str] = "GitHub webhook (issues, issue comments, ping)"
    auth_description: ClassVar[str] = "`X-Hub-Signature-256`"

    def __init__(self, settings: GitHubSettings) -> None:
        self._settings = settings

    @property
    def settings(self) -> GitHubSettings:
        """``TICKET_ROUTER_GITHUB_*``."""
        return self._settings

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """The body's HMAC-SHA256 under the webhook secret, in ``X-Hub-Signature-256``."""
        if self._settings.webhook_secret:
            verify_hub_signature(
                self._settings.webhook_secret, body, headers.get("x-hub-signature-256"), "X-Hub-Signature-256"
            )

    def interpret(self, headers: Mapping[str, str], body: bytes) -> Interpreted:
        """``issues`` events by action; ``ping`` and other events are ignored."""
        event = headers.get("x-github-event") or ""
        if event == "ping":
            return Interpreted(event, None, None, Ignore("ping: the hook is set up"))
        if event == "issue_comment":
            return self._comment(event, body)
        if event != "issues":
            return Interpreted(event or "?", None, None, Ignore(f"{event or 'unnamed'} events are not classified"))
        payload = decode_payload(body, GitHubIssuesEvent)
        issue = payload.issue
        ref, ticket = self._ticket(issue, payload.repository)
        action = payload.action

        def verdict(v: Verdict) -> Interpreted:
            return Interpreted(event, action, ref, v)

        if self._is_us(payload.sender):
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
        if action == "closed":
            return verdict(Closed(ticket))
        if action == "transferred":
            target = payload.changes.new_repository if payload.changes else None
            where = target.full_name if target else "another repository"
            # The destination gets its own `opened` event; classifying here would label a moved issue.
            return verdict(Ignore(f"transferred to {where}; its `opened` event there is the one classified"))
        return verdict(Ignore(f"action {action!r} is not classified"))

    def _ticket(self, issue: GitHubIssue, repository: GitHubRepository) -> tuple[str, Ticket]:
        ref = f"{NAME}:{repository.full_name}#{issue.number}"
        labels = tuple(label.name for label in issue.labels)
        author = issue.user.login if issue.user is not None and issue.user.login else None
        page = web_link(issue.html_url) or self.web_url(ref)
        return ref, Ticket(ref, issue.title, issue.body, labels, repository.full_name, page, author)

    def _comment(self, event: str, body: bytes) -> Interpreted:
        """A new comment may answer the question we asked on the issue."""
        payload = decode_payload(body, GitHubCommentEvent)
        ref, ticket = self._ticket(payload.issue, payload.repository)
        if payload.action != "created":
            return Interpreted(event, payload.action, ref, Ignore(f"comment action {payload.action!r} is not read"))
        if self._is_us(payload.sender) or self._is_us(payload.comment.user):
            return Interpreted(event, payload.action, ref, Ignore(f"caused by our own account {payload.sender.login}"))
        answer = Answer(ticket, payload.comment.body or "", payload.comment.user.login or payload.sender.login)
        return Interpreted(event, payload.action, ref, answer)

    def _is_us(self, sender: GitHubUser) -> bool:
        """Ours only when the login is the configured one; any app's login ends in ``[bot]``."""
        bot = self._settings.bot_login
        if not bot:
            return False
        login, wanted = sender.login.casefold(), bot.casefold()
        return login == wanted or (sender.type == "Bot" and login == f"{wanted.removesuffix('[bot]')}[bot]")

    def _issue_url(self, ticket_ref: str) -> str:
        """``{api}/repos/{owner}/{repo}/issues/{n}``, each part checked again and encoded."""
        match = _REF.match(ticket_ref)
        if match is None:
            raise InvalidPayloadError(f"not a GitHub issue reference: {ticket_ref[:100]!r}")
        owner, repo, number = (quote(part, safe="") for part in match.groups())
        return f"{self._settings.api_url.rstrip('/')}/repos/{owner}/{repo}/issues/{number}"

    def target(self, ticket_ref: str) -> str:
        """The repository, ``github:owner/repo``."""
        return ticket_ref.rpartition("#")[0]

    def label_requests(self, ticket_ref: str, add: str | None, remove: list[str]) -> list[PlannedRequest]:
        """One POST for the new label, one DELETE per label to take away."""
        url = self._issue_url(ticket_ref)
        planned = [PlannedRequest("POST", f"{url}/labels", {"labels": [add]})] if add else []
        # A label someone already removed answers 404: the outcome we wanted.
        planned += [
            PlannedRequest("DELETE", f"{url}/labels/{quote(name, safe='')}", {}, ok=(200, 204, 404)) for name in remove
        ]
        return planned

    def comment_request(self, ticket_ref: str, text: str, marker: str) -> PlannedRequest:
        """An issue comment in Markdown; the probe lists the comments of the last day."""
        comments = f"{self._issue_url(ticket_ref)}/comments"
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
        return PlannedRequest(
            "POST", comments, {"body": text}, marker=marker, probe=f"{comments}?since={since}&per_page=100"
        )

    def web_url(self, ticket_ref: str) -> str:
        """The issue's page: github.com for the public API, else the Enterprise host without ``/api/v3``."""
        repo, _, number = ticket_ref.removeprefix(f"{NAME}:").rpartition("#")
        api = self._settings.api_url.rstrip("/")
        site = "https://github.com" if api == "https://api.github.com" else api.removesuffix("/api/v3")
        return f"{site}/{repo}/issues/{number}"

    def auth_headers(self) -> dict[str, str] | None:
        """A bearer token and the REST API version we speak."""
        if not self._settings.token:
            return None
        return {
            "Authorization": f"Bearer {self._settings.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": USER_AGENT,
        }
