"""Jira Cloud webhooks through the real app: wiki, ADF and null descriptions, changelog policy, write-back."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import msgspec
import pytest
import respx

from service.settings import Settings
from service.trackers.adf import AdfNode, adf_to_text
from tests.service.webhook_kit import (
    JIRA_EMAIL,
    JIRA_SITE,
    JIRA_TOKEN,
    configured,
    fixture,
    jira_headers,
    raw,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

API = f"{JIRA_SITE}/rest/api/3/issue"
BASIC = "Basic " + base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()


def assert_jira_request(request: httpx.Request, method: str, url: str, body: Any) -> None:
    assert (request.method, str(request.url)) == (method, url)
    assert request.headers["authorization"] == BASIC
    assert request.headers["accept"] == "application/json"
    assert sent_json(request) == body


@pytest.mark.parametrize(
    ("name", "key", "team", "label"),
    [
        ("issue_created", "OPS-12", "Platform", "team-platform"),  # wiki markup description
        ("issue_created_adf", "OPS-13", "SRE", "team-sre"),  # Atlassian Document Format description
        ("issue_created_null_description", "OPS-14", "DevOps", "team-devops"),
    ],
)
async def test_created_issues_are_labelled(settings: Settings, name: str, key: str, team: str, label: str) -> None:
    body = raw("jira", name)
    with respx.mock() as router:
        edit = router.put(f"{API}/{key}").mock(return_value=httpx.Response(204))
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/jira", content=body, headers=jira_headers(body))
            result = response.json()
            [row] = await settle(client)
        assert response.status_code == 200
        assert (result["outcome"], result["team"], result["ticket_ref"]) == ("classified", team, f"jira:{key}")
        assert row.status == "done"
        assert_jira_request(edit.calls.last.request, "PUT", f"{API}/{key}", {"update": {"labels": [{"add": label}]}})


async def test_a_comment_is_an_adf_document(settings: Settings) -> None:
    body = raw("jira", "issue_created")
    with respx.mock() as router:
        router.put(f"{API}/OPS-12").mock(return_value=httpx.Response(204))
        comment = router.post(f"{API}/OPS-12/comment").mock(return_value=httpx.Response(201, json={"id": "1"}))
        async with serving(configured(settings, jira_write_back="label+comment")) as client:
            result = (await client.post("/v1/webhooks/jira", content=body, headers=jira_headers(body))).json()
            await settle(client)
        document = sent_json(comment.calls.last.request)["body"]
        assert (document["type"], document["version"]) == ("doc", 1)
        lines = [paragraph["content"][0]["text"] for paragraph in document["content"]]
        assert lines[0].startswith("Ticket Router routed this ticket to Platform: label team-platform")
        assert lines[1].startswith("Why: the words ") and lines[1].endswith("point to Platform.")
        assert lines[2].startswith("Wrong team? Replace team-platform with the right team's label (team-development")
        assert lines[3].startswith(f"Decision {result['decision_id']}, model ")
        assert all(
            p == {"type": "paragraph", "content": [{"type": "text", "text": t}]}
            for p, t in zip(document["content"], lines, strict=True)
        )
        assert_jira_request(comment.calls.last.request, "POST", f"{API}/OPS-12/comment", {"body": document})


def test_adf_is_flattened_to_its_visible_text() -> None:
    description = fixture("jira", "issue_created_adf")["issue"]["fields"]["description"]
    text = adf_to_text(msgspec.convert(description, AdfNode))
    assert text == (
        "Grafana shows 503s from the payments service since 14:05.\n"
        "The SLO burn rate alert fired; paging @Alex Oncall\n"
        "error rate 4%\n"
        "latency p99 2.3s\n"
        "upstream connect error or disconnect/reset before headers"
    )


def test_a_deeply_nested_adf_document_does_not_overflow() -> None:
    node = AdfNode(type="text", text="deep")
    for _ in range(5000):
        node = AdfNode(type="blockquote", content=[node])
    assert adf_to_text(node) == "deep"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("issue_updated_status", "the update changed neither the summary nor the description"),
        ("comment_created", "a comment, and no question of ours is waiting for an answer on this ticket"),
    ],
)
async def test_other_updates_and_events_are_ignored(settings: Settings, name: str, reason: str) -> None:
    body = raw("jira", name)
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/jira", content=body, headers=jira_headers(body))
            assert store_of(client).audit.count() == 0
        assert response.status_code == 200
        assert (response.json()["outcome"], response.json()["reason"]) == ("ignored", reason)
        assert router.calls.call_count == 0


async def test_a_summary_change_is_classified_again(settings: Settings) -> None:
    body = raw("jira", "issue_updated_summary")
    with respx.mock() as router:
        router.put(f"{API}/OPS-12").mock(return_value=httpx.Response(204))
        async with serving(configured(settings)) as client:
            result = (await client.post("/v1/webhooks/jira", content=body, headers=jira_headers(body))).json()
            await settle(client)
        assert (result["outcome"], result["team"]) == ("classified", "Platform")
        assert router.calls.call_count == 1


async def test_a_human_relabel_is_a_correction_and_our_own_change_is_ignored(settings: Settings) -> None:
    created = raw("jira", "issue_created")
    ours = raw("jira", "issue_updated_labels_bot")
    human = raw("jira", "issue_updated_labels_human")
    cfg = configured(settings, jira_bot_account_id="712020:router-bot")
    with respx.mock() as router:
        router.put(f"{API}/OPS-12").mock(return_value=httpx.Response(204))
        async with serving(cfg) as client:
            first = (await client.post("/v1/webhooks/jira", content=created, headers=jira_headers(created))).json()
            await settle(client)
            echo = (await client.post("/v1/webhooks/jira", content=ours, headers=jira_headers(ours))).json()
            result = (await client.post("/v1/webhooks/jira", content=human, headers=jira_headers(human))).json()
            [correction] = store_of(client).corrections.all()
            deliveries = store_of(client).outbox.list_deliveries(10, "jira")
        assert echo["reason"] == "caused by our own account 712020:router-bot"
        assert result["outcome"] == "correction"
        assert (correction.team, correction.previous_team, correction.source) == ("DevOps", "Platform", "jira")
        assert (correction.actor, correction.decision_id) == ("712020:aa11bb22", first["decision_id"])
        assert correction.title == "Upgrade the EKS clusters to 1.30"
        assert [d.outcome for d in deliveries] == ["correction", "ignored", "classified"]
        assert router.calls.call_count == 1
