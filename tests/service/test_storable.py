"""Everything a request stores is bounded at the edge and storable on both backends; one bad row fails alone."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from litestar import Litestar
from litestar.testing import AsyncTestClient

from model.registry import Registry
from service.app import create_app
from service.decisions import DecisionWorker
from service.pointers import registry_for
from service.serving import ModelHolder
from service.settings import Settings
from service.store import Store, StoreDataError, database_url_for
from service.store.schema import decisions
from tests.service.webhook_kit import admin, as_bytes, configured, fixture, github_headers, store_of

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings: Settings, database_url: str) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """The app on each backend (PostgreSQL keeps the active pointer in the database)."""
    on_backend = dataclasses.replace(configured(settings, write_back="dry-run"), database_url=database_url)
    with Store.for_settings(on_backend) as store:
        version = Registry(on_backend.registry_dir).active_version()
        assert version is not None
        registry_for(on_backend, store).activate(version, actor="test")
    async with AsyncTestClient(app=create_app(on_backend)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "ana\x00"),
        ("actor", "a" * 201),
        ("actor", "line\nbreak"),
        ("decision_id", "x" * 33),
        ("decision_id", "not-an-id"),
        ("ticket_ref", "r" * 501),
        ("title", "t" * 1001),
        ("body", "b" * 100_001),
    ],
)
async def test_a_field_that_cannot_be_stored_is_a_422_naming_it(
    client: AsyncTestClient[Litestar], field: str, value: str
) -> None:
    payload = {"team": "SRE", "title": "Disk full on db-1", field: value}
    response = await client.post("/v1/feedback", json=payload, headers=admin())
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(f"{field}: ")


async def test_nul_in_stored_text_is_dropped_not_a_database_error(client: AsyncTestClient[Litestar]) -> None:
    body = {"team": "SRE", "title": "Disk\x00 full", "body": "db-1\x00"}
    response = await client.post("/v1/feedback", json=body, headers=admin())
    assert response.status_code == 201, response.text
    [stored] = store_of(client).corrections.all()
    assert (stored.title, stored.body) == ("Disk full", "db-1")


async def test_a_nul_in_a_github_action_is_recorded_not_a_503(client: AsyncTestClient[Litestar]) -> None:
    payload = fixture("github", "issues_opened")
    payload["action"] = "open\x00ed"
    body = as_bytes(payload)
    response = await client.post("/v1/webhooks/github", content=body, headers=github_headers(body, delivery="nul"))
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "ignored"
    [delivery] = store_of(client).outbox.list_deliveries()
    assert delivery.action == "opened"


def poison_decisions(store: Store) -> None:
    """A trigger that refuses one ticket reference: a row the database refuses, on either backend."""
    with store.db.engine.begin() as conn:
        if store.db.is_sqlite:
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON decisions WHEN NEW.ticket_ref = 'poison'"
                " BEGIN SELECT RAISE(ABORT, 'poison row'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.ticket_ref = 'poison' THEN"
                " RAISE EXCEPTION 'value too long' USING ERRCODE = '22001'; END IF; RETURN NEW; END $$"
                " LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER poison BEFORE INSERT ON decisions FOR EACH ROW EXECUTE FUNCTION poison()"
            )


async def test_a_row_the_database_refuses_fails_alone_and_its_batch_mates_commit(
    settings: Settings, database_url: str
) -> None:
    store = Store.open(database_url_for(database_url, settings.sqlite_path))
    poison_decisions(store)
    holder = ModelHolder(Registry(settings.registry_dir), settings.max_text_chars)
    holder.refresh()
    worker = DecisionWorker(holder, store)
    try:
        # Queued before the worker starts, so that all of them are decided and committed as one batch.
        calls = [
            asyncio.ensure_future(worker.decide([(None, f"Disk full on db-{i}", None)], "api", [ref]))
            for i, ref in enumerate(["a", "poison", "b", None])
        ]
        await asyncio.sleep(0.05)
        worker.start()
        results = await asyncio.gather(*calls, return_exceptions=True)
    finally:
        worker.stop()
    ok = [r for r in results if isinstance(r, list)]
    [failed] = [r for r in results if isinstance(r, BaseException)]
    assert len(ok) == 3, "the batch-mates of the bad row were answered"
    assert isinstance(failed, (StoreDataError, sa.exc.IntegrityError))
    stored = {d.id for d in store.audit.recent(10)}
    assert stored == {recorded.decision_id for result in ok for recorded in result}
    store.close()


def test_a_value_postgresql_refuses_is_a_data_error_not_an_outage(settings: Settings, pg_url: str) -> None:
    store = Store.open(database_url_for(pg_url, settings.sqlite_path))
    row = {
        "id": "x" * 40,  # the column holds 32
        "created_at": time.time(),
        "source": "api",
        "text_sha256": "a" * 64,
        "team": "SRE",
        "confidence": 1.0,
        "abstained": False,
        "model_version": "v1",
        "scores": "{}",
    }
    try:
        with pytest.raises(StoreDataError, match="refused a value"), store.db.write() as conn:
            conn.execute(decisions.insert().values(**row))
        store.ping()  # and the database is fine
    finally:
        store.close()
