"""The trackers' webhook bodies as msgspec Structs: only the fields we read, unknown fields ignored.

Trackers add fields all the time, so nothing here forbids unknown ones; what we do read is typed,
and the parts that end up in a tracker URL (repository, project, issue key) are constrained.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from service.webhooks.adf import AdfNode

__all__ = [
    "GitHubIssuesEvent",
    "GitHubPing",
    "GitLabIssueEvent",
    "JiraIssueEvent",
]

RepoName = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=300)]
IssueNumber = Annotated[int, Meta(ge=1)]
JiraKey = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_]*-[0-9]+$", max_length=100)]


# -- GitHub: X-GitHub-Event `issues` and `ping` ----------------------------------------------


class GitHubUser(msgspec.Struct):
    """The account that caused the event; ``type`` is ``Bot`` for apps."""

    login: str = ""
    type: str = "User"


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


class GitHubPing(msgspec.Struct):
    """The ``ping`` GitHub sends when a hook is created."""

    zen: str | None = None
    hook_id: int | None = None


# -- GitLab: X-Gitlab-Event `Issue Hook` / `Confidential Issue Hook` (issues and work items) --


class GitLabUser(msgspec.Struct):
    """The account that caused the event."""

    username: str = ""


class GitLabLabel(msgspec.Struct):
    """A label; GitLab names it ``title``."""

    title: str


class GitLabProject(msgspec.Struct):
    """The project the issue or work item belongs to."""

    id: Annotated[int, Meta(ge=1)]
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


# -- Jira Cloud: body `webhookEvent` ----------------------------------------------------------


class JiraUser(msgspec.Struct, rename="camel"):
    """The account that caused the event; ``account_type`` is ``app`` for apps."""

    account_id: str | None = None
    account_type: str | None = None
    display_name: str | None = None


class JiraFields(msgspec.Struct):
    """The issue fields we read; ``description`` is wiki markup, an ADF tree, or null."""

    summary: str | None = None
    description: str | AdfNode | None = None
    labels: list[str] = []


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


class JiraIssueEvent(msgspec.Struct, rename="camel"):
    """An issue event: ``webhook_event`` is ``jira:issue_created``, ``jira:issue_updated``, ..."""

    webhook_event: str
    issue: JiraIssue | None = None
    user: JiraUser | None = None
    changelog: JiraChangelog | None = None
