"""The REST requests each tracker takes to label a ticket and to comment on it, and their auth headers.

Requests are planned (and stored) before they are sent; credentials are added only when
sending, so nothing secret is ever stored or logged.

- GitHub: ``POST {api}/repos/{owner}/{repo}/issues/{n}/labels`` ``{"labels": [...]}``, a removal
  is ``DELETE .../labels/{name}``, a comment ``POST .../issues/{n}/comments``.
- GitLab: ``PUT {base}/api/v4/projects/{id}/issues/{iid}`` with ``add_labels``/``remove_labels``,
  a comment ``POST .../issues/{iid}/notes``.
- Jira Cloud: ``PUT {site}/rest/api/3/issue/{key}`` ``{"update": {"labels": [...]}}``, a comment
  ``POST .../issue/{key}/comment`` with an Atlassian Document Format body.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import msgspec

from model.decision import Decision
from service.settings import Settings

__all__ = [
    "USER_AGENT",
    "PlannedRequest",
    "auth_headers",
    "comment_request",
    "comment_text",
    "label_requests",
]

USER_AGENT = "ticket-router/0.1.0"


class PlannedRequest(msgspec.Struct, frozen=True):
    """One request to a tracker: method, absolute URL, JSON body and the statuses that mean success."""

    method: str
    url: str
    json: dict[str, Any]
    ok: tuple[int, ...] = (200, 201, 204)


def _base(settings: Settings, tracker: str) -> str:
    if tracker == "github":
        return settings.github_api_url.rstrip("/")
    if tracker == "gitlab":
        return settings.gitlab_url.rstrip("/") + "/api/v4"
    return (settings.jira_url or "").rstrip("/") + "/rest/api/3"


def _issue_url(settings: Settings, tracker: str, ticket_ref: str) -> str:
    """The REST URL of a ticket from its reference (``github:o/r#12``, ``gitlab:7#3``, ``jira:OPS-1``)."""
    base = _base(settings, tracker)
    target = ticket_ref.removeprefix(f"{tracker}:")
    if tracker == "github":
        repo, _, number = target.rpartition("#")
        return f"{base}/repos/{repo}/issues/{number}"
    if tracker == "gitlab":
        project, _, iid = target.rpartition("#")
        return f"{base}/projects/{project}/issues/{iid}"
    return f"{base}/issue/{target}"


def label_requests(
    settings: Settings, tracker: str, ticket_ref: str, add: str | None, remove: list[str]
) -> list[PlannedRequest]:
    """The requests that add ``add`` and remove ``remove`` (labels we set before) on a ticket."""
    url = _issue_url(settings, tracker, ticket_ref)
    if tracker == "github":
        planned = [PlannedRequest("POST", f"{url}/labels", {"labels": [add]})] if add else []
        # A label someone already removed answers 404: the outcome we wanted.
        planned += [
            PlannedRequest("DELETE", f"{url}/labels/{quote(name, safe='')}", {}, ok=(200, 204, 404)) for name in remove
        ]
        return planned
    if tracker == "gitlab":
        body: dict[str, Any] = {}
        if add:
            body["add_labels"] = add
        if remove:
            body["remove_labels"] = ",".join(remove)
        return [PlannedRequest("PUT", url, body)] if body else []
    operations: list[dict[str, str]] = [{"remove": name} for name in remove]
    if add:
        operations.append({"add": add})
    return [PlannedRequest("PUT", url, {"update": {"labels": operations}})] if operations else []


def comment_request(settings: Settings, tracker: str, ticket_ref: str, text: str) -> PlannedRequest:
    """The request that posts ``text`` as a comment on a ticket."""
    url = _issue_url(settings, tracker, ticket_ref)
    if tracker == "github":
        return PlannedRequest("POST", f"{url}/comments", {"body": text})
    if tracker == "gitlab":
        return PlannedRequest("POST", f"{url}/notes", {"body": text})
    paragraphs = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} for line in text.split("\n") if line
    ]
    return PlannedRequest("POST", f"{url}/comment", {"body": {"type": "doc", "version": 1, "content": paragraphs}})


def comment_text(decision: Decision, label: str, decision_id: str, top: int = 3) -> str:
    """What we tell the team: the team or triage, the confidence and the top scores."""
    ranked = sorted(decision.scores.items(), key=lambda item: item[1], reverse=True)[:top]
    scores = ", ".join(f"{team} {score:.0%}" for team, score in ranked)
    if decision.abstained:
        head = (
            f"Ticket Router is not confident enough to pick a team (best guess {decision.team}"
            f" at {decision.confidence:.0%}), so this ticket is labelled {label} for triage."
        )
    else:
        head = (
            f"Ticket Router routed this ticket to {decision.team}"
            f" (label {label}, confidence {decision.confidence:.0%})."
        )
    return f"{head}\nTop scores: {scores}.\nModel {decision.model_version}, decision {decision_id}."


def auth_headers(settings: Settings, tracker: str) -> dict[str, str] | None:
    """The headers that authenticate us to ``tracker``, or None when its credentials are not set."""
    if tracker == "github":
        if not settings.github_token:
            return None
        return {
            "Authorization": f"Bearer {settings.github_token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": USER_AGENT,
        }
    if tracker == "gitlab":
        if not settings.gitlab_token:
            return None
        return {"PRIVATE-TOKEN": settings.gitlab_token, "User-Agent": USER_AGENT}
    if not (settings.jira_url and settings.jira_email and settings.jira_api_token):
        return None
    basic = base64.b64encode(f"{settings.jira_email}:{settings.jira_api_token}".encode()).decode()
    return {"Authorization": f"Basic {basic}", "Accept": "application/json", "User-Agent": USER_AGENT}
