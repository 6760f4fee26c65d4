"""The triage queue: which decisions keep their text for a person, how they leave the queue, and its index."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from model.decision import Decision
from service.app import create_app
from service.settings import Settings, SettingsError
from service.store import CorrectionRecord, DecisionRecord, Store, TriageRecord, database_url_for, new_id
from service.trackers import registry
from service.trackers.base import web_link
from service.triage import triage_of, triage_reason
from tests.service.test_store_backends import decision
from tests.service.webhook_kit import configured, github_headers, raw, replace_settings, serving, store_of

async_test = pytest.mark.anyio


def make_decision(scores: dict[str, float], abstained: bool = False) -> Decision:
    team = max(scores, key=lambda t: scores[t])
    return Decision(team, scores[team], abstained, scores, [], "v1")


@pytest.mark.parametrize(
    ("scores", "abstained", "margin", "reason"),
    [
        ({"A": 0.9, "B": 0.1}, True, 0.1, "abstained"),
        ({"A": 0.52, "B": 0.48}, False, 0.1, "close"),
        ({"A": 0.5, "B": 0.3, "C": 0.2}, False, 0.25, "close"),
        ({"A": 0.5, "B": 0.3, "C": 0.2}, False, 0.2, None),  # 0.2 apart is not under 0.2
        ({"A": 0.52, "B": 0.48}, False, 0.0, None),  # margin 0: abstentions only
        ({"A": 0.96, "B": 0.04}, False, 1.0, "close"),
    ],
)
def test_the_policy_sends_abstained_and_close_decisions(
    scores: dict[str, float], abstained: bool, margin: float, reason: str | None
) -> None:
    assert triage_reason(make_decision(scores, abstained), margin) == reason


def test_the_console_s_own_tries_never_go_to_triage() -> None:
    close = make_decision({"A": 0.5, "B": 0.5})
    assert triage_of("d1", close, "console", "t", "b", 0.1, 1.0) is None
    row = triage_of("d1", close, "api", "t", None, 0.1, 1.0, "github:a/b#1", "https://x")
    assert row == TriageRecord("d1", 1.0, "close", "t", "", ticket_ref="github:a/b#1", url="https://x")


@pytest.mark.parametrize(("name", "value"), [("triage_margin", -0.1), ("triage_margin", 1.5)])
def test_bad_triage_settings_are_refused(settings: Settings, name: str, value: float) -> None:
    with pytest.raises(SettingsError, match="TRIAGE_MARGIN"):
        dataclasses.replace(settings, **{name: value})


def triage_row(record: DecisionRecord, title: str = "title", ref: str | None = None) -> TriageRecord:
    return TriageRecord(record.id, record.created_at, "abstained", title, "body", ticket_ref=ref)


def test_queue_pages_newest_first_and_rows_leave_it(database_url: str) -> None:
    with Store.open(database_url_for(database_url, None)) as store:  # type: ignore[arg-type]
        records = [decision(ref=f"github:acme/shop#{i}") for i in range(5)]
        store.audit.add(records, [triage_row(r, f"ticket {i}", r.ticket_ref) for i, r in enumerate(records)])
        store.audit.add([decision()])  # a clear decision keeps no text
        page = store.triage.page(limit=3)
        assert [item.triage.title for item in page] == ["ticket 4", "ticket 3", "ticket 2"]
        assert page[0].decision == records[4]
        rest = store.triage.page(limit=3, before=page[-1].triage.decision_id)
        assert [item.triage.title for item in rest] == ["ticket 1", "ticket 0"]
        assert store.triage.open_count() == 5

        # A correction naming the decision takes it out, in its own transaction.
        fix = CorrectionRecord(new_id(), time.time(), "api", "Platform", "", "", "a" * 64, decision_id=records[4].id)
        store.corrections.add(fix)
        row = store.triage.get(records[4].id)
        assert row is not None
        assert (row.status, row.correction_id, row.resolved_at) == ("corrected", fix.id, fix.created_at)
        # A newer decision for the same ticket supersedes its open row.
        store.audit.add([decision(ref="github:acme/shop#3")])
        assert store.triage.get(records[3].id).status == "superseded"  # type: ignore[union-attr]
        # A person's relabel in the tracker (a correction by ticket) too.
        relabel = CorrectionRecord(
            new_id(), time.time(), "github", "SRE", "t", "b", "b" * 64, ticket_ref="github:acme/shop#2"
        )
        store.corrections.add(relabel)
        assert [item.triage.title for item in store.triage.page()] == ["ticket 1", "ticket 0"]
        assert store.triage.open_count() == 2
        # Retention deletes the texts, in the queue or not.
        assert store.triage.prune(time.time() + 1) == 5
        assert store.triage.page() == []


def test_the_queue_query_reads_the_index(tmp_path: Any) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'plan.sqlite3'}") as store:
        query = store.triage.page_query(50, "f" * 32).compile(store.db.engine, compile_kwargs={"literal_binds": True})
        with store.db.read() as conn:
            plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}"))
    assert "ix_triage_status_decision" in plan, plan
    assert "TEMP B-TREE" not in plan, f"the queue is sorted without the index: {plan}"


@pytest.fixture
def triage_settings(settings: Settings) -> Settings:
    # Every decision abstains, so every one goes to triage with its text.
    return dataclasses.replace(settings, abstain_threshold=1.0, admin_token="admin-secret")


@async_test
async def test_decisions_keep_their_text_for_triage_until_feedback(triage_settings: Settings) -> None:
    app = create_app(triage_settings)
    async with AsyncTestClient(app=app) as client:
        answer = await client.post("/v1/classify", json={"title": "Disk full on db-1", "body": "since 3am"})
        decision_id = answer.headers["x-decision-id"]
        store: Store = app.state.runtime.store
        row = store.triage.get(decision_id)
        assert row is not None
        assert (row.reason, row.title, row.body, row.status) == ("abstained", "Disk full on db-1", "since 3am", "open")
        fixed = await client.post(
            "/v1/feedback",
            json={"decision_id": decision_id, "team": "SRE", "actor": "ana"},
            headers={"Authorization": "Bearer admin-secret"},
        )
        assert fixed.status_code == 201
        row = store.triage.get(decision_id)
        assert row is not None
        assert (row.status, row.correction_id) == ("corrected", fixed.json()["id"])


@async_test
async def test_clear_decisions_keep_no_text(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, triage_margin=0.0, abstain_threshold=0.0))
    async with AsyncTestClient(app=app) as client:
        answer = await client.post("/v1/classify", json={"title": "Disk full on db-1"})
        assert app.state.runtime.store.triage.get(answer.headers["x-decision-id"]) is None


@async_test
async def test_webhook_decisions_keep_the_ticket_and_its_link(triage_settings: Settings) -> None:
    body = raw("github", "issues_opened")
    async with serving(configured(triage_settings, write_back="dry-run")) as client:
        result = (await client.post("/v1/webhooks/github", content=body, headers=github_headers(body))).json()
        assert result["outcome"] == "classified"
        row = store_of(client).triage.get(result["decision_id"])
    assert row is not None
    assert (row.ticket_ref, row.url) == ("github:acme/shop#12", "https://github.com/acme/shop/issues/12")
    assert row.title == "p99 latency above 2s on checkout"


@pytest.mark.parametrize(
    ("changes", "ref", "url"),
    [
        ({}, "github:acme/shop#12", "https://github.com/acme/shop/issues/12"),
        (
            {"github_api_url": "https://ghe.acme.example/api/v3"},
            "github:a/b#3",
            "https://ghe.acme.example/a/b/issues/3",
        ),
        ({"jira_url": "https://acme.atlassian.net/"}, "jira:OPS-12", "https://acme.atlassian.net/browse/OPS-12"),
        ({}, "jira:OPS-12", None),  # no site configured
        ({"gitlab_url": "https://gitlab.example.com"}, "gitlab:15#23", None),  # the project's path is not in the ref
        ({}, "console-only", None),
        ({}, None, None),
    ],
)
def test_each_tracker_says_where_a_person_reads_its_tickets(
    settings: Settings, changes: dict[str, str], ref: str | None, url: str | None
) -> None:
    known = registry.build(replace_settings(settings, **changes).trackers)
    tracker = registry.owner_of(known, ref)
    assert (tracker.web_url(ref) if tracker is not None and ref else None) == url


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://x.example/1", True),
        ("http://x.example/1", True),
        ("javascript:alert(1)", False),
        ("", False),
        ("https://x.example/a b", False),
        (None, False),
    ],
)
def test_only_web_addresses_become_links(url: str | None, kept: bool) -> None:
    assert web_link(url) == (url if kept else None)
