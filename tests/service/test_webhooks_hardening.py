"""Webhooks under attack or bad luck: hostile identifiers, replays under new ids, hanging trackers, lost answers."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
import respx
import sqlalchemy as sa

from service.settings import Settings
from service.store.schema import webhook_fingerprints
from service.trackers.errors import InvalidPayloadError
from service.trackers.github import GitHub, GitHubSettings
from service.trackers.gitlab import GitLab, GitLabSettings
from service.trackers.jira import Jira, JiraSettings
from service.webhooks.writeback import PER_TARGET
from tests.service.webhook_kit import (
    admin,
    as_bytes,
    configured,
    fixture,
    github_headers,
    raw,
    sent_json,
    serving,
    settle,
    store_of,
)

pytestmark = pytest.mark.anyio

API = "https://api.github.com/repos"


def issue(repo: str = "acme/shop", number: int = 12, title: str = "p99 latency above 2s on checkout") -> bytes:
    payload = fixture("github", "issues_opened")
    payload["repository"]["full_name"] = repo
    payload["issue"]["number"] = number
    payload["issue"]["title"] = title
    return as_bytes(payload)


# -- point 7: identifiers that would steer the token elsewhere ------------------------------------


@pytest.mark.parametrize(
    ("repo", "number"),
    [
        ("../..", 201),
        ("acme/..", 12),
        ("acme/.", 12),
        ("acme/shop/../../users", 12),
        ("acme/shop?x=1", 12),
        ("acme%2F../shop", 12),
        ("acme/shop", 10**600),  # a 600-digit issue number (too long for any column)
        ("acme/shop", 0),
    ],
)
async def test_a_hostile_repository_or_issue_number_is_refused_before_anything_is_sent(
    settings: Settings, repo: str, number: int
) -> None:
    body = issue(repo, number)
    with respx.mock(assert_all_called=False) as router:  # no route: any outgoing request fails the test
        async with serving(configured(settings)) as client:
            response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert "full_name" in response.json()["detail"] or "number" in response.json()["detail"]
            assert store_of(client).outbox.list_writebacks() == []
            assert store_of(client).audit.count() == 0
        assert not router.calls


@pytest.mark.parametrize(
    ("tracker", "ref"),
    [
        (GitHub(GitHubSettings()), "github:../..#201"),
        (GitHub(GitHubSettings()), "github:acme/shop#12/../../../x"),
        (GitLab(GitLabSettings()), "gitlab:15/../../users#1"),
        (GitLab(GitLabSettings()), "gitlab:15#1?private=1"),
        (Jira(JiraSettings(url="https://acme.atlassian.net")), "jira:../../myself"),
        (Jira(JiraSettings(url="https://acme.atlassian.net")), "jira:OPS-12/../../x"),
    ],
)
def test_trackers_build_no_url_from_a_reference_they_would_not_have_made(tracker: Any, ref: str) -> None:
    with pytest.raises(InvalidPayloadError):
        tracker.label_requests(ref, "team:sre", [])
    with pytest.raises(InvalidPayloadError):
        tracker.comment_request(ref, "text", marker="m")


def test_label_names_are_encoded_as_one_path_segment() -> None:
    [delete] = GitHub(GitHubSettings()).label_requests("github:acme/shop#12", None, ["team/../../x y"])
    assert delete.url == f"{API}/acme/shop/issues/12/labels/team%2F..%2F..%2Fx%20y"


# -- point 8: the same signed body under a new delivery id ----------------------------------------


async def test_a_replay_under_a_new_delivery_id_is_recorded_as_a_duplicate(settings: Settings) -> None:
    body = raw("github", "issues_opened")
    with respx.mock() as router:
        labels = router.post(url__startswith=f"{API}/acme/shop/issues/").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings)) as client:
            first = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, delivery="a"))
            again = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, delivery="b"))
            await settle(client)
            store = store_of(client)
            assert first.json()["outcome"] == "classified"
            assert again.status_code == 200
            assert again.json()["outcome"] == "duplicate"
            assert "delivery a" in again.json()["reason"]
            [replay] = [d for d in store.outbox.list_deliveries() if d.delivery_id == "b"]
            assert replay.outcome == "duplicate"
            assert store.audit.count() == 1, "classified once"
            assert len(store.outbox.list_writebacks()) == 1, "written back once"
            other = issue(number=13)
            assert (await client.post("/v1/webhooks/github", content=other, headers=github_headers(other))).json()[
                "outcome"
            ] == "classified", "another issue is another event"
            # Past the window (24 h by default) the same content is a new event again.
            with store.db.write() as conn:
                conn.execute(sa.update(webhook_fingerprints).values(received_at=time.time() - 2 * 86400))
            late = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, delivery="c"))
            assert late.json()["outcome"] == "classified"
            await settle(client)
        twelve = [call for call in labels.calls if "/issues/12/" in str(call.request.url)]
        assert len(twelve) == 2, "once for the first delivery, once for the copy that came after the window"


# -- point 5: a hanging tracker holds up nobody else -----------------------------------------------


async def test_a_hanging_repository_does_not_hold_up_another_one(settings: Settings) -> None:
    release = asyncio.Event()
    hanging_calls: list[str] = []

    async def hang(request: httpx.Request) -> httpx.Response:
        hanging_calls.append(str(request.url))
        await release.wait()
        return httpx.Response(200, json=[])

    with respx.mock() as router:
        router.post(url__startswith=f"{API}/slow/repo/").mock(side_effect=hang)
        healthy = router.post(f"{API}/acme/shop/issues/12/labels").mock(return_value=httpx.Response(200, json=[]))
        async with serving(configured(settings, writeback_deadline_seconds=600.0)) as client:
            for number in range(1, 9):
                body = issue("slow/repo", number, title=f"p99 latency above 2s on checkout {number}")
                assert (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()[
                    "write_back"
                ] == "pending"
            body = issue()
            await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            for _ in range(500):
                if healthy.call_count:
                    break
                await asyncio.sleep(0.01)
            assert healthy.call_count == 1, "the healthy repository was written while the other one hangs"
            assert len(hanging_calls) <= PER_TARGET, "a hanging repository gets a bounded share"
            release.set()
            rows = await settle(client, timeout=10)
        assert {row.status for row in rows} == {"done"}


async def test_an_attempt_past_its_deadline_is_given_up_and_rescheduled(settings: Settings) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    with respx.mock(assert_all_called=False) as router:  # the call is cut off before respx records it
        router.post(f"{API}/acme/shop/issues/12/labels").mock(side_effect=never)
        cfg = configured(settings, writeback_deadline_seconds=0.2, writeback_retry_seconds=600.0)
        async with serving(cfg) as client:
            body = raw("github", "issues_opened")
            await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            [row] = await settle(client)
    assert row.status == "failed" and row.next_attempt_at is not None
    assert "gave up after 0.2 s" in (row.last_error or "")


async def test_the_retry_endpoint_answers_at_once_while_the_tracker_hangs(settings: Settings) -> None:
    release = asyncio.Event()

    async def refuse_then_hang(request: httpx.Request) -> httpx.Response:
        if not hasattr(refuse_then_hang, "refused"):
            refuse_then_hang.refused = True  # type: ignore[attr-defined]
            return httpx.Response(403, json={"message": "no"})
        await release.wait()
        return httpx.Response(200, json=[])

    with respx.mock() as router:
        router.post(f"{API}/acme/shop/issues/12/labels").mock(side_effect=refuse_then_hang)
        async with serving(configured(settings, writeback_deadline_seconds=600.0)) as client:
            body = raw("github", "issues_opened")
            await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))
            [failed] = await settle(client)
            assert failed.status == "failed"
            answer = await asyncio.wait_for(client.post("/v1/writebacks/retry", headers=admin()), timeout=5)
            assert answer.status_code == 202
            assert answer.json()["scheduled"] == 1
            release.set()
            [done] = await settle(client)
    assert done.status == "done"


# -- point 6: a comment whose answer was lost is not posted twice ----------------------------------


@pytest.mark.parametrize("already_there", [True, False])
async def test_a_comment_is_resent_only_when_the_tracker_does_not_have_it(
    settings: Settings, already_there: bool
) -> None:
    comments_url = f"{API}/acme/shop/issues/12/comments"
    posted: list[str] = []

    def post_comment(request: httpx.Request) -> httpx.Response:
        posted.append(sent_json(request)["body"])
        if len(posted) == 1:
            raise httpx.ReadTimeout("the tracker applied it, but its answer never came")
        return httpx.Response(201, json={"id": 2})

    def list_comments(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"id": 1, "body": posted[0]}] if already_there else [])

    with respx.mock() as router:
        router.post(f"{API}/acme/shop/issues/12/labels").mock(return_value=httpx.Response(200, json=[]))
        router.post(comments_url).mock(side_effect=post_comment)
        probe = router.get(url__startswith=comments_url).mock(side_effect=list_comments)
        async with serving(configured(settings, write_back="label+comment")) as client:
            body = raw("github", "issues_opened")
            result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
            [row] = await settle(client)
    assert row.status == "done"
    assert probe.call_count == 1, "looked before re-sending"
    assert result["decision_id"] in posted[0], "the comment carries the marker the probe looks for"
    assert len(posted) == (1 if already_there else 2)
    assert "since=" in str(probe.calls.last.request.url)


def test_every_tracker_plans_a_comment_with_a_marker_and_a_probe() -> None:
    for tracker, ref in [
        (GitHub(GitHubSettings()), "github:acme/shop#12"),
        (GitLab(GitLabSettings()), "gitlab:15#23"),
        (Jira(JiraSettings(url="https://acme.atlassian.net")), "jira:OPS-12"),
    ]:
        planned = tracker.comment_request(ref, "Routed. decision 0123", marker="0123")
        assert planned.marker == "0123" and planned.probe is not None
        assert planned.probe.startswith(planned.url + "?")
        assert "0123" in json.dumps(planned.json)
