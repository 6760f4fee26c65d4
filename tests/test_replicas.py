"""Scale-out: two service processes share one PostgreSQL database and one model registry."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from click.testing import CliRunner

from service.cli import main
from tests.conftest import make_training_data
from tests.server_kit import free_port

ADMIN = {"Authorization": "Bearer replica-admin"}
GITHUB_SECRET = "replica-webhook-secret"
pytestmark = pytest.mark.slow


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the replica exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


@pytest.fixture
def replicas(pg_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], list[str]]]:
    env = {
        **os.environ,
        "TICKET_ROUTER_DATABASE_URL": pg_url,
        "TICKET_ROUTER_DATA_DIR": str(tmp_path / "shared-registry"),
        "TICKET_ROUTER_TRAINING_DATA": str(make_training_data(tmp_path / "training_data")),
        "TICKET_ROUTER_ADMIN_TOKEN": "replica-admin",
        "TICKET_ROUTER_RATE_LIMIT": "off",
        "TICKET_ROUTER_MODEL_POLL_SECONDS": "0.5",
        "TICKET_ROUTER_LOG_LEVEL": "warning",
        "TICKET_ROUTER_GITHUB_WEBHOOK_SECRET": GITHUB_SECRET,
        "TICKET_ROUTER_WRITE_BACK": "dry-run",
    }
    assert CliRunner().invoke(main, ["train"], env=env, catch_exceptions=False).exit_code == 0
    executable = shutil.which("ticket-router", path=str(Path(sys.executable).parent))
    assert executable
    processes, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [executable, "serve", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, process in zip(urls, processes, strict=True):
            wait_ready(url, process)
        yield env, urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def test_replicas_share_corrections_activations_and_one_training(replicas: tuple[dict[str, str], list[str]]) -> None:
    env, (first, second) = replicas
    with httpx.Client(timeout=10, headers=ADMIN) as client:
        # The active version comes from the database: both replicas serve it.
        versions = {
            client.post(f"{url}/v1/classify", json={"title": "disk full"}).json()["model_version"]
            for url in (first, second)
        }
        assert len(versions) == 1

        # A correction made on one replica is visible on the other.
        created = client.post(f"{first}/v1/feedback", json={"text": "Upgrade node pools", "team": "Platform"})
        assert created.status_code == 201
        assert created.json()["id"] in {item["id"] for item in client.get(f"{second}/v1/feedback").json()["items"]}

        # An activation on one replica is served by both within seconds.
        output = CliRunner().invoke(main, ["train", "--json", "--no-activate"], env=env, catch_exceptions=False).output
        candidate = json.loads(output)["version"]
        assert client.post(f"{second}/v1/models/{candidate}/activate", json={"force": True}).status_code == 200
        deadline = time.monotonic() + 10
        served: set[str] = set()
        while time.monotonic() < deadline:
            served = {
                client.post(f"{url}/v1/classify", json={"title": "disk full"}).json()["model_version"]
                for url in (first, second)
            }
            if served == {candidate}:
                break
            time.sleep(0.2)
        assert served == {candidate}
        listed = client.get(f"{first}/v1/models").json()
        assert listed["active"] == candidate
        assert listed["activations"][0]["version"] == candidate

        # One training at a time across replicas.
        assert client.post(f"{first}/v1/models", json={"activate": False}).status_code == 202
        refused = client.post(f"{second}/v1/models", json={"activate": False})
        assert refused.status_code == 409
        assert "already" in refused.json()["detail"]


def test_a_webhook_delivered_to_both_replicas_at_once_is_processed_once(
    replicas: tuple[dict[str, str], list[str]], pg_url: str
) -> None:
    _, urls = replicas
    body = json.dumps(
        {
            "action": "opened",
            "issue": {"number": 42, "title": "Pods OOMKilled in production", "body": "alerts firing", "labels": []},
            "repository": {"full_name": "acme/shop"},
            "sender": {"login": "ana", "type": "User"},
        }
    ).encode()
    signature = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "content-type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": "same-delivery-on-both",
        "X-Hub-Signature-256": signature,
    }
    barrier = threading.Barrier(len(urls) * 3)
    outcomes: list[str] = []

    def deliver(url: str) -> None:
        barrier.wait()
        response = httpx.post(f"{url}/v1/webhooks/github", content=body, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        outcomes.append(response.json()["outcome"])

    threads = [threading.Thread(target=deliver, args=(url,)) for url in urls * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["classified"] + ["duplicate"] * 5
    with psycopg.connect(pg_url) as db:
        decisions = db.execute("SELECT count(*) FROM decisions WHERE ticket_ref = 'github:acme/shop#42'").fetchone()
        writebacks = db.execute("SELECT count(*) FROM writebacks WHERE ticket_ref = 'github:acme/shop#42'").fetchone()
    assert decisions == (1,), "exactly one replica classified"
    assert writebacks == (1,), "and recorded one write-back"
