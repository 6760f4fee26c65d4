"""GitHub webhooks through the real app: what is classified, what is ignored, and the exact write-back."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.settings import Settings
from service.store import CorrectionRecord
from tests.service.webhook_kit import (
    GITHUB_TOKEN,
    as_bytes,
    configured,
    fixture,
    github_headers,
    raw,
    replace_settings,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

API = "https://api.github.com/repos/acme/shop/issues"
GITHUB_HEADERS = {
    "authorization": f"Bearer {GITHUB_TOKEN}",
    "accept": "application/vnd.github+json",
    "x-github-api-version": "2022-11-28",
    "user-agent": "ticket-router/0.1.0",
}


def assert_github_request(request: httpx.Request, method: str, url: str, body: Any) -> None:
    assert request.method == method
    assert str(request.url) == url
    for name, value in GITHUB_HEADERS.items():
        assert request.headers[name] == value, name
    assert sent_json(request) == body


async def test_opened_issue_is_labelled_after_the_answer(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[{"name": "team:sre"}]))
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            assert response.status_code == 200, response.text
            result = response.json()
            assert result["outcome"] == "classified"
            assert result["team"] == "SRE"
            assert result["ticket_ref"] == "github:acme/shop#12"
            assert result["write_back"] == "pending"
            assert result["label"] == "team:sre"
            rows = await settle(client)
            store = store_of(client)
            [decision] = store.audit.recent(10, "github:acme/shop#12")
        assert decision.id == result["decision_id"] and decision.source == "github"
        [row] = rows
        assert (row.status, row.attempts, row.decision_id, row.label) == ("done", 1, decision.id, "team:sre")
        assert labels.call_count == 1
        assert_github_request(labels.calls.last.request, "POST", f"{API}/12/labels", {"labels": ["team:sre"]})


async def test_label_and_comment_mode_posts_the_comment_with_team_confidence_and_scores(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        comments = router.post(f"{API}/12/comments").mock(return_value=httpx.Response(201, json={"id": 1}))
        async with serving(configured(settings, github_write_back="label+comment")) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            await settle(client)
        assert labels.call_count == 1 and comments.call_count == 1
        comment = sent_json(comments.calls.last.request)["body"]
        assert_github_request(comments.calls.last.request, "POST", f"{API}/12/comments", {"body": comment})
        assert comment.startswith("Ticket Router routed this ticket to SRE: label team:sre, confidence ")
        why = next(line for line in comment.splitlines() if line.startswith("Why: the words "))
        assert why.endswith("point to SRE.") and '"' in why
        assert (
            "Replace team:sre with the right team's label (team:development, team:devops or team:platform)" in comment
        )
        assert f"POST /v1/feedback with decision_id {result['decision_id']}" in comment
        assert result["confidence"] > 0.5


async def test_a_null_body_is_classified_from_the_title(settings: Settings) -> None:
    body = raw("github", "issues_opened_null_body")
    with respx.mock() as router:
        labels = router.post(f"{API}/13/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            await settle(client)
        assert (result["outcome"], result["team"]) == ("classified", "DevOps")
        assert_github_request(labels.calls.last.request, "POST", f"{API}/13/labels", {"labels": ["team:devops"]})


@pytest.mark.parametrize(
    ("name", "event", "reason"),
    [
        ("ping", "ping", "ping: the hook is set up"),
        ("issues_edited_no_text", "issues", "the edit changed neither the title nor the body"),
        ("issues_closed", "issues", "closed with no team label: no outcome to record"),
        (
            "issues_transferred",
            "issues",
            "transferred to acme/platform; its `opened` event there is the one classified",
        ),
        ("issues_opened", "pull_request", "pull_request events are not classified"),
    ],
)
async def test_events_we_do_not_classify_get_200_and_are_recorded_with_the_reason(
    settings: Settings, name: str, event: str, reason: str
) -> None:
    body = raw("github", name)
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            response = await client.post(
                "/v1/webhooks/github", content=body, headers=github_headers(body, event, "d-" + name)
            )
            assert response.status_code == 200
            assert response.json()["outcome"] == "ignored"
            assert response.json()["reason"] == reason
            await settle(client)
            store = store_of(client)
            delivery = store.outbox.get_delivery("github", "d-" + name)
            assert store.audit.count() == 0
        assert delivery is not None and (delivery.outcome, delivery.reason, delivery.event) == (
            "ignored",
            reason,
            event,
        )
        assert router.calls.call_count == 0


async def test_an_edit_of_the_title_reclassifies_without_writing_the_same_label_twice(settings: Settings) -> None:
    opened = raw("github", "issues_opened")
    edited = fixture("github", "issues_edited_title")
    # GitHub shows our label on the issue once it is there.
    edited["issue"]["labels"] = [{"id": 1, "name": "team:sre", "color": "d93f0b", "default": False}]
    edited_body = as_bytes(edited)
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            await client.post("/v1/webhooks/github", content=opened, headers=github_headers(opened))
            await settle(client)
            response = await client.post(
                "/v1/webhooks/github", content=edited_body, headers=github_headers(edited_body)
            )
            result = response.json()
            await settle(client)
            decisions = store_of(client).audit.recent(10, "github:acme/shop#12")
        assert result["outcome"] == "classified" and result["team"] == "SRE"
        assert "already carries it, nothing to write" in result["reason"]
        assert len(decisions) == 2, "the edit was classified again"
        assert labels.call_count == 1, "the unchanged label is not written again"


async def test_an_edit_that_changes_the_team_swaps_our_label(settings: Settings) -> None:
    opened = raw("github", "issues_opened")
    edited = fixture("github", "issues_edited_title")
    edited["issue"]["title"] = "CI pipeline fails on npm ci"
    edited["issue"]["body"] = "Every GitHub Actions run fails at the install step."
    edited["changes"] = {"title": {"from": "p99 latency above 2s on checkout"}, "body": {"from": "..."}}
    edited["issue"]["labels"] = [{"id": 1, "name": "team:sre"}, {"id": 2, "name": "bug"}]
    edited_body = as_bytes(edited)
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        removal = router.delete(f"{API}/12/labels/team%3Asre").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            await client.post("/v1/webhooks/github", content=opened, headers=github_headers(opened))
            await settle(client)
            result = (
                await client.post("/v1/webhooks/github", content=edited_body, headers=github_headers(edited_body))
            ).json()
            await settle(client)
        assert result["team"] == "DevOps"
        assert [sent_json(call.request) for call in labels.calls] == [
            {"labels": ["team:sre"]},
            {"labels": ["team:devops"]},
        ]
        assert removal.call_count == 1
        assert_github_request(removal.calls.last.request, "DELETE", f"{API}/12/labels/team%3Asre", None)


async def test_a_redelivery_neither_classifies_nor_writes_again_even_after_a_restart(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    headers = github_headers(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    cfg = configured(settings)
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(cfg) as client:
            first = (await client.post("/v1/webhooks/github", content=body, headers=headers)).json()
            again = (await client.post("/v1/webhooks/github", content=body, headers=headers)).json()
            await settle(client)
        async with serving(cfg) as client:  # a new process over the same data dir
            after_restart = (await client.post("/v1/webhooks/github", content=body, headers=headers)).json()
            await settle(client)
            assert store_of(client).audit.count() == 1
        assert first["outcome"] == "classified"
        for result in (again, after_restart):
            assert result["outcome"] == "duplicate"
            assert result["decision_id"] == first["decision_id"]
        assert labels.call_count == 1


async def test_a_human_label_on_a_new_issue_wins(settings: Settings) -> None:
    payload = fixture("github", "issues_opened")
    payload["issue"]["labels"] = [{"id": 9, "name": "team:platform", "color": "ededed", "default": False}]
    body = as_bytes(payload)
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            await settle(client)
            assert store_of(client).audit.count() == 0
        assert result["outcome"] == "ignored"
        assert "team label 'team:platform' set by a person" in result["reason"]
        assert router.calls.call_count == 0


async def test_a_human_relabel_is_stored_as_a_correction_linked_to_our_decision(settings: Settings) -> None:
    opened = raw("github", "issues_opened")
    relabel = raw("github", "issues_labeled_human")
    with respx.mock() as router:
        router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            first = (await client.post("/v1/webhooks/github", content=opened, headers=github_headers(opened))).json()
            await settle(client)
            calls_before = router.calls.call_count
            result = (await client.post("/v1/webhooks/github", content=relabel, headers=github_headers(relabel))).json()
            await settle(client)
            [correction] = store_of(client).corrections.all()
        assert router.calls.call_count == calls_before, "nothing is written for a correction"
        assert result["outcome"] == "correction" and result["team"] == "DevOps"
        assert isinstance(correction, CorrectionRecord)
        assert correction.id == result["correction_id"]
        assert (correction.team, correction.previous_team, correction.source) == ("DevOps", "SRE", "github")
        assert (correction.actor, correction.ticket_ref) == ("hubot-human", "github:acme/shop#12")
        assert correction.decision_id == first["decision_id"]
        assert correction.title == "p99 latency above 2s on checkout"
        assert correction.body.startswith("Grafana shows 503s")


async def test_a_human_label_cancels_our_write_back_that_has_not_happened_yet(settings: Settings) -> None:
    opened = raw("github", "issues_opened")
    relabel = raw("github", "issues_labeled_human")
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(503))
        cfg = configured(settings, writeback_attempts=1, writeback_retry_seconds=3600.0)
        async with serving(cfg) as client:
            await client.post("/v1/webhooks/github", content=opened, headers=github_headers(opened))
            [failed] = await settle(client)
            assert failed.status == "failed" and failed.next_attempt_at is not None
            await client.post("/v1/webhooks/github", content=relabel, headers=github_headers(relabel))
            [row] = store_of(client).outbox.list_writebacks()
        assert row.status == "superseded" and row.next_attempt_at is None
        assert labels.call_count == 1


@pytest.mark.parametrize("bot_login", ["ticket-router[bot]", "Ticket-Router"])
async def test_our_own_label_event_is_ignored(settings: Settings, bot_login: str) -> None:
    body = raw("github", "issues_labeled_bot")
    with respx.mock() as router:
        async with serving(configured(settings, github_bot_login=bot_login)) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            assert store_of(client).corrections.all() == []
        assert result == {
            "tracker": "github",
            "delivery_id": result["delivery_id"],
            "outcome": "ignored",
            "reason": "caused by our own account ticket-router[bot]",
            "ticket_ref": "github:acme/shop#12",
        }
        assert router.calls.call_count == 0


async def test_another_app_is_not_us_just_because_its_login_ends_in_bot(settings: Settings) -> None:
    payload = fixture("github", "issues_opened")
    payload["sender"] = {"login": "dependabot[bot]", "id": 49699333, "type": "Bot"}
    body = as_bytes(payload)
    with respx.mock() as router:
        router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings, github_bot_login="ticket-router[bot]")) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            await settle(client)
        assert result["outcome"] == "classified"
        assert router.calls.call_count == 1


async def test_without_a_bot_login_our_own_label_echo_is_still_not_a_correction(settings: Settings) -> None:
    opened = raw("github", "issues_opened")
    echo = raw("github", "issues_labeled_bot")
    with respx.mock() as router:
        router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            await client.post("/v1/webhooks/github", content=opened, headers=github_headers(opened))
            await settle(client)
            result = (await client.post("/v1/webhooks/github", content=echo, headers=github_headers(echo))).json()
            assert store_of(client).corrections.all() == []
        assert (result["outcome"], result["reason"]) == ("ignored", "our own label event")


async def test_dry_run_decides_and_records_but_sends_nothing(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    cfg = configured(settings, write_back="dry-run", github_token=None)
    with respx.mock() as router:
        async with serving(cfg) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            rows = await settle(client)
        assert (result["outcome"], result["write_back"]) == ("classified", "dry-run")
        [row] = rows
        assert row.status == "dry-run" and row.label == "team:sre"
        assert "POST" in row.request and "/issues/12/labels" in row.request
        assert router.calls.call_count == 0


async def test_an_abstained_decision_gets_the_triage_label(settings: Settings) -> None:
    payload = fixture("github", "issues_opened")
    payload["issue"]["title"], payload["issue"]["body"] = "Question", "hello"
    body = as_bytes(payload)
    cfg = configured(settings, abstain_threshold=0.99, triage_label="triage-me")
    with respx.mock() as router:
        labels = router.post(f"{API}/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(cfg) as client:
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            await settle(client)
        assert result["abstained"] is True and result["label"] == "triage-me"
        assert_github_request(labels.calls.last.request, "POST", f"{API}/12/labels", {"labels": ["triage-me"]})


async def test_github_enterprise_base_url(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    cfg = configured(settings, github_api_url="https://github.acme.example/api/v3/")
    with respx.mock() as router:
        labels = router.post("https://github.acme.example/api/v3/repos/acme/shop/issues/12/labels").mock(
            return_value=httpx.Response(200, json=[])
        )
        async with serving(cfg) as client:
            await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            await settle(client)
        assert labels.call_count == 1


async def test_a_verified_body_that_is_not_an_issue_event_is_a_clear_422(settings: Settings) -> None:
    body = b'{"action": "opened", "issue": {"number": "twelve"}}'
    async with serving(configured(settings)) as client:
        response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, delivery="x1"))
        assert store_of(client).outbox.get_delivery("github", "x1") is None, (
            "a rejected delivery can be redelivered later"
        )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "expected shape" in response.json()["detail"]


async def test_settings_refuse_a_secret_without_a_token(settings: Settings) -> None:
    with pytest.raises(ValueError, match="TICKET_ROUTER_GITHUB_TOKEN is not set"):
        replace_settings(settings, github_webhook_secret="s")
