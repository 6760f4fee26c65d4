"""The same store code on both backends: SQLite (embedded) and PostgreSQL (shared by replicas)."""

from __future__ import annotations

import threading
import time

import pytest

from service.store import (
    CorrectionRecord,
    DecisionRecord,
    DeliveryRecord,
    JobConflictError,
    Store,
    database_url_for,
    new_id,
)
from service.store.schema import MIGRATIONS


def decision(team: str = "SRE", ref: str | None = None) -> DecisionRecord:
    return DecisionRecord(
        id=new_id(),
        created_at=time.time(),
        source="api",
        text_sha256="a" * 64,
        team=team,
        confidence=0.9,
        abstained=False,
        model_version="v1",
        scores={"SRE": 0.9, "DevOps": 0.1},
        ticket_ref=ref,
    )


def test_migrations_run_once_even_when_processes_start_together(database_url: str) -> None:
    url = database_url_for(database_url, None)  # type: ignore[arg-type]
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            stores.append(Store.open(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert {s.schema_version() for s in stores} == {MIGRATIONS[-1][0]}
        assert stores[0].db.migrate() == [], "nothing left to apply"
    finally:
        for store in stores:
            store.close()


def test_decisions_corrections_jobs_and_pointers(database_url: str) -> None:
    store = Store.open(database_url_for(database_url, None))  # type: ignore[arg-type]
    try:
        records = [decision(ref="github:o/r#1"), decision("DevOps")]
        store.audit.add(records)
        assert store.audit.get(records[0].id) == records[0]
        assert store.audit.count() == 2
        assert [r.id for r in store.audit.recent(ticket_ref="github:o/r#1")] == [records[0].id]

        ids = []
        for i in range(3):
            correction = CorrectionRecord(new_id(), time.time(), "api", "SRE", f"ticket {i}", "", "b" * 64)
            store.corrections.add(correction)
            ids.append(correction.id)
        assert [c.id for c in store.corrections.page(2)] == ids[::-1][:2]
        assert [c.id for c in store.corrections.page(2, before=ids[1])] == ids[:1]
        assert [c.id for c in store.corrections.all()] == ids

        job = store.jobs.create("train", {"note": "x"}, "ana")
        with pytest.raises(JobConflictError):
            store.jobs.create("train", {}, "bob")
        store.jobs.update(job.id, status="succeeded", result={"version": "v2"})
        assert store.jobs.get(job.id).result == {"version": "v2"}  # type: ignore[union-attr]
        store.jobs.create("train", {}, "bob")  # the slot is free again

        assert store.models.pointer("active") is None
        store.models.set_pointer("active", "v2", b'{"at": "now", "version": "v2", "previous": null}')
        assert store.models.pointer("active") == "v2"
        assert store.models.activation_events() == [b'{"at": "now", "version": "v2", "previous": null}']
    finally:
        store.close()


def test_a_delivery_is_claimed_once_and_a_dead_claim_can_be_taken_over(database_url: str) -> None:
    store = Store.open(database_url_for(database_url, None))  # type: ignore[arg-type]
    try:
        assert store.outbox.claim_delivery("github", "d-1", stale_after=60) is True
        assert store.outbox.claim_delivery("github", "d-1", stale_after=60) is False, "claimed already"
        assert store.outbox.claim_delivery("github", "d-1", stale_after=0) is True, "an old claim is taken over"
        store.outbox.release_delivery("github", "d-1")
        assert store.outbox.claim_delivery("github", "d-1", stale_after=60) is True, "released claims can be made again"
        done = DeliveryRecord("github", "d-1", time.time(), "issues", "classified", action="opened")
        assert store.outbox.record_delivery(done) is True, "the claim is completed"
        assert store.outbox.get_delivery("github", "d-1").outcome == "classified"  # type: ignore[union-attr]
        assert store.outbox.claim_delivery("github", "d-1", stale_after=0) is False, (
            "a finished delivery is never reclaimed"
        )
        assert store.outbox.record_delivery(done) is False, "a redelivery is refused"
    finally:
        store.close()
