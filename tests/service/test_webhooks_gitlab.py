"""GitLab webhooks through the real app: issues, confidential issues, work items, the signing token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from service.settings import Settings
from tests.service.webhook_kit import (
    GITLAB_SIGNING,
    GITLAB_TOKEN,
    configured,
    fixture,
    gitlab_headers,
    raw,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

API = "https://gitlab.example.com/api/v4/projects/15/issues"


def assert_gitlab_request(request: httpx.Request, method: str, url: str, body: Any) -> None:
    assert (request.method, str(request.url)) == (method, url)
    assert request.headers["private-token"] == GITLAB_TOKEN
    assert request.headers["user-agent"] == "ticket-router/0.1.0"
    assert "authorization" not in request.headers
    assert sent_json(request) == body


@pytest.mark.parametrize(
    ("name", "event", "iid", "team", "label"),
    [
        ("issue_open", "Issue Hook", 23, "DevOps", "team::devops"),
        # Confidential issues come under their own header; this one's description is null.
        ("issue_open_confidential", "Confidential Issue Hook", 24, "SRE", "team::sre"),
        # A task made in the work item view: object_kind work_item, same header.
        ("work_item_open", "Issue Hook", 25, "Platform", "team::platform"),
    ],
)
async def test_new_issues_and_work_items_are_labelled(
    settings: Settings, name: str, event: str, iid: int, team: str, label: str
) -> None:
    body = raw("gitlab", name)
    with respx.mock() as router:
        update = router.put(f"{API}/{iid}").mock(return_value=httpx.Response(200, json={"iid": iid}))
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body, event))
            result = response.json()
            [row] = await settle(client)
        assert response.status_code == 200
        assert (result["outcome"], result["team"], result["label"]) == ("classified", team, label)
        assert result["ticket_ref"] == f"gitlab:15#{iid}"
        assert row.status == "done"
        assert update.call_count == 1
        assert_gitlab_request(update.calls.last.request, "PUT", f"{API}/{iid}", {"add_labels": label})


async def test_label_and_comment_mode_adds_a_note(settings: Settings) -> None:
    body = raw("gitlab", "issue_open")
    with respx.mock() as router:
        router.put(f"{API}/23").mock(return_value=httpx.Response(200, json={}))
        notes = router.post(f"{API}/23/notes").mock(return_value=httpx.Response(201, json={"id": 5}))
        async with serving(configured(settings, write_back="label+comment")) as client:
            await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body))
            await settle(client)
        note = sent_json(notes.calls.last.request)["body"]
        assert_gitlab_request(notes.calls.last.request, "POST", f"{API}/23/notes", {"body": note})
        assert note.startswith("Ticket Router routed this ticket to DevOps: label team::devops")
        assert "Replace team::devops with the right team's label (team::development, " in note


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("issue_update_assignee", "the update changed neither the title nor the description"),
        ("issue_close", "closed with no team label: no outcome to record"),
        ("work_item_epic_open", "group-level Epic has no project issue to label"),
    ],
)
async def test_updates_without_text_changes_and_other_actions_are_ignored(
    settings: Settings, name: str, reason: str
) -> None:
    body = raw("gitlab", name)
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body))
            await settle(client)
            assert store_of(client).audit.count() == 0
        assert response.status_code == 200
        assert (response.json()["outcome"], response.json()["reason"]) == ("ignored", reason)
        assert router.calls.call_count == 0


@pytest.mark.parametrize("event", ["Push Hook", "Pipeline Hook", "Merge Request Hook"])
async def test_other_hooks_get_200(settings: Settings, event: str) -> None:
    body = b'{"object_kind": "push", "ref": "refs/heads/main"}'
    with respx.mock() as router:
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body, event))
        assert response.status_code == 200
        assert response.json()["reason"] == f"{event} events are not classified"
        assert router.calls.call_count == 0


async def test_a_title_update_is_classified_again(settings: Settings) -> None:
    opened = raw("gitlab", "issue_open")
    updated = raw("gitlab", "issue_update_title")
    with respx.mock() as router:
        router.put(f"{API}/23").mock(return_value=httpx.Response(200, json={}))
        async with serving(configured(settings)) as client:
            await client.post("/v1/webhooks/gitlab", content=opened, headers=gitlab_headers(opened))
            await settle(client)
            result = (await client.post("/v1/webhooks/gitlab", content=updated, headers=gitlab_headers(updated))).json()
            await settle(client)
            assert len(store_of(client).audit.recent(10, "gitlab:15#23")) == 2
        assert result["outcome"] == "classified" and result["team"] == "DevOps"
        # The update's payload does not show our label yet, so it is added again: GitLab keeps one.
        assert [sent_json(call.request) for call in router.calls] == [{"add_labels": "team::devops"}] * 2


async def test_a_human_relabel_is_a_correction_and_our_bots_echo_is_not(settings: Settings) -> None:
    opened = raw("gitlab", "issue_open")
    echo = raw("gitlab", "issue_update_labels_bot")
    human = raw("gitlab", "issue_update_labels_human")
    cfg = configured(settings, gitlab_bot_username="ticket-router-bot")
    with respx.mock() as router:
        router.put(f"{API}/23").mock(return_value=httpx.Response(200, json={}))
        async with serving(cfg) as client:
            first = (await client.post("/v1/webhooks/gitlab", content=opened, headers=gitlab_headers(opened))).json()
            await settle(client)
            ignored = (await client.post("/v1/webhooks/gitlab", content=echo, headers=gitlab_headers(echo))).json()
            result = (await client.post("/v1/webhooks/gitlab", content=human, headers=gitlab_headers(human))).json()
            [correction] = store_of(client).corrections.all()
        assert router.calls.call_count == 1
        assert ignored["reason"] == "caused by our own account ticket-router-bot"
        assert result["outcome"] == "correction"
        assert (correction.team, correction.previous_team, correction.actor) == ("Platform", "DevOps", "pat")
        assert (correction.decision_id, correction.ticket_ref) == (first["decision_id"], "gitlab:15#23")
        assert correction.title == "CI pipeline fails on npm ci"


async def test_a_redelivery_with_the_same_idempotency_key_is_a_duplicate(settings: Settings) -> None:
    body = raw("gitlab", "issue_open")
    with respx.mock() as router:
        update = router.put(f"{API}/23").mock(return_value=httpx.Response(200, json={}))
        async with serving(configured(settings)) as client:
            results = [
                (
                    await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body, delivery="k-1"))
                ).json()
                for _ in range(3)
            ]
            await settle(client)
            assert store_of(client).audit.count() == 1
        assert [r["outcome"] for r in results] == ["classified", "duplicate", "duplicate"]
        assert update.call_count == 1


async def test_the_signing_token_scheme_is_verified(settings: Settings) -> None:
    body = raw("gitlab", "issue_open")
    cfg = configured(settings, gitlab_webhook_token=None, gitlab_signing_token=GITLAB_SIGNING)
    with respx.mock() as router:
        router.put(f"{API}/23").mock(return_value=httpx.Response(200, json={}))
        async with serving(cfg) as client:
            good = gitlab_headers(body, signed=True)
            del good["X-Gitlab-Token"]
            ok = await client.post("/v1/webhooks/gitlab", content=body, headers=good)
            tampered = await client.post(
                "/v1/webhooks/gitlab", content=body + b" ", headers=good | {"Idempotency-Key": "t"}
            )
            await settle(client)
        assert ok.status_code == 200 and ok.json()["outcome"] == "classified"
        assert tampered.status_code == 401
        assert tampered.json()["detail"] == "webhook-signature does not match the body"
        assert router.calls.call_count == 1


async def test_with_both_mechanisms_configured_both_must_pass(settings: Settings) -> None:
    body = raw("gitlab", "issue_open")
    cfg = configured(settings, gitlab_signing_token=GITLAB_SIGNING)
    async with serving(cfg) as client:
        token_only = await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body))
    assert token_only.status_code == 401
    assert "webhook-signature" in token_only.json()["detail"]


async def test_a_self_managed_instance_url_is_used(settings: Settings) -> None:
    payload: dict[str, Any] = fixture("gitlab", "issue_open")
    body = raw("gitlab", "issue_open")
    with respx.mock() as router:
        update = router.put("https://git.internal.acme/api/v4/projects/15/issues/23").mock(
            return_value=httpx.Response(200, json={})
        )
        async with serving(configured(settings, gitlab_url="https://git.internal.acme/")) as client:
            await client.post("/v1/webhooks/gitlab", content=body, headers=gitlab_headers(body))
            await settle(client)
        assert update.call_count == 1
    assert payload["project"]["id"] == 15
