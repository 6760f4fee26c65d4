"""Durability: the server is killed (SIGKILL) in the middle of a stream of writes; nothing it acknowledged is lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from model.registry import Registry
from tests.conftest import make_training_data
from tests.server_kit import free_port, start_server

ADMIN = {"Authorization": "Bearer durable-admin"}


@pytest.mark.slow
def test_a_killed_server_loses_nothing_it_acknowledged(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TICKET_ROUTER_DATA_DIR": str(tmp_path / "var"),
        "TICKET_ROUTER_TRAINING_DATA": str(make_training_data(tmp_path / "training_data")),
        "TICKET_ROUTER_ADMIN_TOKEN": "durable-admin",
        "TICKET_ROUTER_RATE_LIMIT": "off",
        "TICKET_ROUTER_JOB_STALE_SECONDS": "1",
        "TICKET_ROUTER_LOG_LEVEL": "warning",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(env, port)
    acknowledged_decisions: list[str] = []
    acknowledged_feedback: list[str] = []
    stop = threading.Event()

    def writer(kind: str) -> None:
        with httpx.Client(base_url=url, timeout=5, headers=ADMIN) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    if kind == "classify":
                        response = client.post("/v1/classify", json={"title": f"disk full on db-{i}"})
                        if response.status_code == 200:
                            acknowledged_decisions.append(response.headers["x-decision-id"])
                    else:
                        response = client.post("/v1/feedback", json={"text": f"{kind} ticket {i}", "team": "SRE"})
                        if response.status_code == 201:
                            acknowledged_feedback.append(response.json()["id"])
                except httpx.TransportError:
                    return  # the server is gone

    threads = [
        threading.Thread(target=writer, args=(kind,)) for kind in ["classify", "classify", "feedback-a", "feedback-b"]
    ]
    for thread in threads:
        thread.start()
    # A training job is running too when the server dies.
    assert httpx.post(f"{url}/v1/models", json={"activate": True}, headers=ADMIN).status_code == 202
    time.sleep(1.5)
    children = psutil.Process(process.pid).children(recursive=True)
    assert children, "the training runs in a worker process"
    process.send_signal(signal.SIGKILL)
    process.wait()
    # The training worker sees its parent gone and ends: nothing is left running.
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, f"left running: {alive}"
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged_decisions) > 20 and len(acknowledged_feedback) > 20

    database = tmp_path / "var" / "ticket-router.sqlite3"
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        decisions = {row[0] for row in db.execute("SELECT id FROM decisions")}
        corrections = {row[0] for row in db.execute("SELECT id FROM corrections")}
    assert set(acknowledged_decisions) <= decisions, "every answered decision is on record"
    assert set(acknowledged_feedback) <= corrections, "every acknowledged correction is stored"

    registry = Registry(tmp_path / "var" / "models")
    active = registry.active_version()
    assert active is not None
    registry.load(active)  # the registry is consistent: the active version loads and verifies
    assert all(not p.name.startswith(".ACTIVE") for p in registry.root.iterdir()), "no half-written pointer"

    process = start_server(env, port)  # restarts cleanly on the same data
    try:
        with httpx.Client(base_url=url, timeout=5, headers=ADMIN) as client:
            assert client.post("/v1/classify", json={"title": "after restart"}).status_code == 200
            newest = client.get("/v1/feedback", params={"limit": 1}).json()["items"][0]["id"]
            assert newest >= max(acknowledged_feedback), "stored, maybe with some the kill left unanswered"
            # The interrupted training is failed, not left running forever; a new one can start.
            assert client.post("/v1/models", json={"activate": False}).status_code == 202
    finally:
        process.terminate()
        process.wait(timeout=20)
