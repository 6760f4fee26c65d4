"""A question instead of a guess, through the real app: asked once, answered, routed (GitHub, GitLab, Jira)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.settings import Settings
from tests.service.webhook_kit import (
    admin,
    as_bytes,
    configured,
    fixture,
    github_headers,
    gitlab_headers,
    jira_headers,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

API = "https://api.github.com/repos/acme/shop/issues/12"
TITLE, BODY = "Checkout is broken", "since this morning"


def signed(question: str, decision_id: str) -> str:
    """The question as posted: signed with its decision id, so a retried post finds itself already there."""
    return f"{question}\n(Ticket Router, decision {decision_id}.)"


QUESTION = (
    "Ticket Router could not tell whether this ticket is for SRE or Development, so it is labelled needs-triage"
    " for now. Which of these is it closer to?\n"
    "1. SRE: respond to outages and incidents where customers see errors, downtime or slowness in production.\n"
    "2. Development: build new product features and improvements that users and customers ask for.\n"
    "Please answer in a comment (or edit the ticket to say more): the router reads the answer and routes the ticket."
)
ANSWER = "It is happening in production right now: customers get 503 errors and the latency alert is firing."


def asking(settings: Settings, **more: Any) -> Settings:
    return configured(settings, ask_questions=True, tie_margin=0.15, **more)


def opened(action: str = "opened", labels: tuple[str, ...] = ()) -> dict[str, Any]:
    payload = fixture("github", "issues_opened")
    payload["action"] = action
    payload["issue"]["title"], payload["issue"]["body"] = TITLE, BODY
    payload["issue"]["labels"] = [{"name": name} for name in labels]
    return payload


def commented(text: str, login: str = "octocat", labels: tuple[str, ...] = ("needs-triage",)) -> dict[str, Any]:
    payload = opened(labels=labels)
    payload.pop("action")
    return {"action": "created", **payload, "comment": {"body": text, "user": {"login": login, "type": "User"}}}


async def post_github(client: Any, payload: dict[str, Any], event: str = "issues") -> dict[str, Any]:
    body = as_bytes(payload)
    response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, event))
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_an_unclear_ticket_gets_the_triage_label_and_one_question_then_the_answer_routes_it(
    settings: Settings,
) -> None:
    with respx.mock() as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        comments = router.post(f"{API}/comments").mock(return_value=httpx.Response(201, json={}))
        removed = router.delete(f"{API}/labels/needs-triage").mock(return_value=httpx.Response(200, json=[]))
        async with serving(asking(settings)) as client:
            first = await post_github(client, opened())
            await settle(client)
            assert first["outcome"] == "classified" and first["label"] == "needs-triage"
            assert first["question"] == QUESTION
            assert [sent_json(c.request) for c in labels.calls] == [{"labels": ["needs-triage"]}]
            assert [sent_json(c.request) for c in comments.calls] == [{"body": signed(QUESTION, first["decision_id"])}]

            # Our own question comes back as a comment event: it is not an answer.
            own = await post_github(client, commented(QUESTION, login="someone"), "issue_comment")
            assert (own["outcome"], own["reason"]) == ("ignored", "our own question (or an empty comment)")

            answer = await post_github(client, commented(ANSWER), "issue_comment")
            await settle(client)
            assert answer["outcome"] == "answered" and answer["team"] == "SRE" and answer["label"] == "team:sre"
            assert answer["reason"].startswith("octocat answered our question (SRE or Development): routed to SRE at")
            assert [sent_json(c.request) for c in labels.calls][1:] == [{"labels": ["team:sre"]}]
            assert removed.call_count == 1, "the triage label we set is taken away"

            # Never a second question: a later unclear decision on the same ticket asks nothing.
            again = await post_github(client, opened("reopened", labels=("team:sre",)))
            await settle(client)
            assert again.get("question") is None
            assert comments.call_count == 1

            deliveries = (await client.get("/v1/webhooks/deliveries", headers=admin())).json()["deliveries"]
            reasons = [d["reason"] for d in deliveries]
            assert any("asked the reporter: 1. SRE: respond to outages" in r for r in reasons)
            assert any("answered our question (SRE or Development): routed to SRE" in r for r in reasons)
            [question] = store_of(client).questions.list()
            assert (question.status, question.teams) == ("answered", ["SRE", "Development"])
            assert question.outcome is not None and question.outcome.startswith("routed to SRE at")


async def test_an_answer_that_is_still_unclear_leaves_the_ticket_in_triage(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        router.post(f"{API}/comments").mock(return_value=httpx.Response(201, json={}))
        async with serving(asking(settings)) as client:
            await post_github(client, opened())
            await settle(client)
            answer = await post_github(client, commented("no idea, sorry"), "issue_comment")
            await settle(client)
        assert answer["outcome"] == "answered" and answer["abstained"] is True
        assert "still unclear" in answer["reason"] and "nothing to write" in answer["reason"]
        assert labels.call_count == 1


async def test_an_edit_while_the_question_waits_is_the_answer(settings: Settings) -> None:
    with respx.mock() as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        router.post(f"{API}/comments").mock(return_value=httpx.Response(201, json={}))
        router.delete(f"{API}/labels/needs-triage").mock(return_value=httpx.Response(200, json=[]))
        async with serving(asking(settings)) as client:
            await post_github(client, opened())
            await settle(client)
            edited = opened("edited", labels=("needs-triage",))
            edited["issue"]["body"] = f"{BODY}\n\n{ANSWER}"
            edited["changes"] = {"body": {"from": BODY}}
            result = await post_github(client, edited)
            await settle(client)
        assert (result["outcome"], result["team"], result["label"]) == ("answered", "SRE", "team:sre")
        assert [sent_json(c.request) for c in labels.calls] == [{"labels": ["needs-triage"]}, {"labels": ["team:sre"]}]


async def test_a_comment_with_no_question_waiting_is_ignored_and_questions_are_off_by_default(
    settings: Settings,
) -> None:
    with respx.mock(assert_all_called=False) as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        comments = router.post(f"{API}/comments").mock(return_value=httpx.Response(201, json={}))
        async with serving(configured(settings)) as client:
            first = await post_github(client, opened())
            await settle(client)
            comment = await post_github(client, commented(ANSWER), "issue_comment")
        assert first.get("question") is None and first["label"] == "team:sre"
        assert comment["outcome"] == "ignored"
        assert (labels.call_count, comments.call_count) == (1, 0)


GITLAB = "https://gitlab.example.com/api/v4/projects/15/issues/23"


def gitlab_note(text: str) -> dict[str, Any]:
    return {
        "object_kind": "note",
        "user": {"username": "dana"},
        "project": {"id": 15, "path_with_namespace": "acme/shop"},
        "object_attributes": {"note": text, "noteable_type": "Issue"},
        "issue": {"iid": 23, "title": TITLE, "description": BODY, "labels": [{"title": "needs-triage"}]},
    }


async def test_gitlab_a_note_answers_the_question(settings: Settings) -> None:
    payload = fixture("gitlab", "issue_open")
    payload["object_attributes"]["title"], payload["object_attributes"]["description"] = TITLE, BODY
    with respx.mock() as router:
        put = router.put(GITLAB).mock(return_value=httpx.Response(200, json={}))
        notes = router.post(f"{GITLAB}/notes").mock(return_value=httpx.Response(201, json={}))
        async with serving(asking(settings)) as client:
            for body, event in [(as_bytes(payload), "Issue Hook"), (as_bytes(gitlab_note(ANSWER)), "Note Hook")]:
                response = await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body, event))
                assert response.status_code == 200, response.text
                await settle(client)
        assert response.json()["outcome"] == "answered"
        assert [sent_json(c.request) for c in put.calls] == [
            {"add_labels": "needs-triage"},
            {"add_labels": "team::sre", "remove_labels": "needs-triage"},
        ]
        [note] = notes.calls
        assert sent_json(note.request)["body"].startswith(QUESTION + "\n(Ticket Router, decision ")


JIRA = "https://acme.atlassian.net/rest/api/3/issue/SHOP-7"


async def test_jira_a_comment_answers_the_question(settings: Settings) -> None:
    created = fixture("jira", "issue_created")
    created["issue"]["key"] = "SHOP-7"
    created["issue"]["fields"].update(summary=TITLE, description=BODY, labels=[])
    comment = fixture("jira", "comment_created")
    comment["comment"]["body"] = ANSWER
    comment["issue"]["key"] = "SHOP-7"
    comment["issue"]["fields"].update(summary=TITLE, description=BODY, labels=["needs-triage"])
    with respx.mock() as router:
        put = router.put(JIRA).mock(return_value=httpx.Response(204))
        posted = router.post(f"{JIRA}/comment").mock(return_value=httpx.Response(201, json={}))
        async with serving(asking(settings)) as client:
            for payload in (created, comment):
                body = as_bytes(payload)
                response = await client.post("/v1/webhooks/jira", content=body, headers=jira_headers(body))
                assert response.status_code == 200, response.text
                await settle(client)
        assert response.json()["outcome"] == "answered", response.json()
        assert [sent_json(c.request) for c in put.calls] == [
            {"update": {"labels": [{"add": "needs-triage"}]}},
            {"update": {"labels": [{"remove": "needs-triage"}, {"add": "team-sre"}]}},
        ]
        [asked] = posted.calls
        paragraphs = sent_json(asked.request)["body"]["content"]
        lines = [p["content"][0]["text"] for p in paragraphs]
        assert lines[:-1] == QUESTION.split("\n") and lines[-1].startswith("(Ticket Router, decision ")


async def test_a_comment_after_a_person_set_a_team_label_does_not_route(settings: Settings) -> None:
    with respx.mock(assert_all_called=False) as router:
        labels = router.post(f"{API}/labels").mock(return_value=httpx.Response(200, json=[]))
        router.post(f"{API}/comments").mock(return_value=httpx.Response(201, json={}))
        async with serving(asking(settings)) as client:
            await post_github(client, opened())
            await settle(client)
            answer = await post_github(
                client, commented(ANSWER, labels=("needs-triage", "team:devops")), "issue_comment"
            )
            await settle(client)
        assert answer["outcome"] == "ignored"
        assert answer["reason"] == "a comment, but a person already set team label 'team:devops': people's labels win"
        assert labels.call_count == 1
