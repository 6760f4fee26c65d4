"""What an attacker or bad luck does to a real server: idle connections, disconnects, killed processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.server_kit import free_port, fresh_env, start_server, stop_server

pytestmark = pytest.mark.slow

ADMIN = {"Authorization": "Bearer hardening-admin"}


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A real server; ``request.param`` is a dict of extra environment variables."""
    log = tmp_path / "server.log"
    env = fresh_env(tmp_path, TICKET_ROUTER_ADMIN_TOKEN="hardening-admin", TICKET_ROUTER_LOG_LEVEL="info")
    env.update(getattr(request, "param", {}))
    port = free_port()
    with log.open("wb") as output:
        process = start_server(env, port, output=output)
        try:
            yield f"http://127.0.0.1:{port}", process, log
        finally:
            stop_server(process)


def slow_connection(port: int) -> socket.socket:
    """A connection that starts a request and never finishes its headers."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
    return sock


@pytest.mark.parametrize(
    "server",
    [{"TICKET_ROUTER_HEADER_TIMEOUT_SECONDS": "2", "TICKET_ROUTER_MAX_CONCURRENCY": "20"}],
    indirect=True,
)
def test_connections_that_never_finish_their_headers_neither_count_nor_stay(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    idle = [slow_connection(port) for _ in range(60)]  # three times the concurrency limit
    try:
        with httpx.Client(base_url=url, timeout=10) as client:
            statuses = [
                client.post("/v1/classify", json={"title": f"disk full on db-{i}"}).status_code for i in range(20)
            ]
            assert statuses == [200] * 20, "idle connections are not work in progress"
            assert client.get("/healthz").status_code == 200
        # The header timeout (2 s here) closes every one of them.
        deadline = time.monotonic() + 15
        closed = 0
        for sock in idle:
            sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                closed += sock.recv(1024) == b""
            except ConnectionResetError:
                closed += 1
            except TimeoutError:
                pass
        assert closed == len(idle), f"{len(idle) - closed} slow connections still open after the header timeout"
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("server", [{"TICKET_ROUTER_MAX_CONCURRENCY": "2"}], indirect=True)
def test_the_concurrency_limit_counts_requests_in_progress(server: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    body = b'{"title": "Disk full on db-1"}'
    head = b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    busy = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    try:
        for sock in busy:  # two requests in progress: headers in, body still coming
            sock.sendall(head % len(body) + body[:10])
        refused = httpx.post(f"{url}/v1/classify", json={"title": "Disk full"}, timeout=5)
        deadline = time.monotonic() + 15
        while refused.status_code == 200 and time.monotonic() < deadline:  # until the server has both in hand
            time.sleep(0.1)
            refused = httpx.post(f"{url}/v1/classify", json={"title": "Disk full"}, timeout=5)
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "1"
        assert httpx.get(f"{url}/healthz").status_code == 200, "the probes are never refused"
        for sock in busy:
            sock.sendall(body[10:])
            sock.settimeout(10)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
        assert httpx.post(f"{url}/v1/classify", json={"title": "Disk full"}).status_code == 200
    finally:
        for sock in busy:
            sock.close()


def test_a_client_that_disconnects_mid_body_is_a_499_at_info_level_never_a_5xx(
    server: tuple[str, subprocess.Popen[bytes], Path],
) -> None:
    url, _, log = server
    port = int(url.rsplit(":", 1)[1])
    paths = ["/v1/classify", "/v1/classify/batch", "/v1/feedback", "/v1/webhooks/github"]
    for path in paths:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
            sock.sendall(head.encode() + b'Authorization: Bearer hardening-admin\r\n\r\n{"title": "half a bo')
            time.sleep(0.3)

    def served() -> dict[tuple[str, str], float]:
        metrics = httpx.get(f"{url}/metrics").text
        return {
            (sample.labels["path"], sample.labels["status_code"]): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if sample.name == "ticket_router_requests_total"
        }

    deadline = time.monotonic() + 15
    while sum(v for (_, status), v in served().items() if status == "499") < len(paths):
        assert time.monotonic() < deadline, served()
        time.sleep(0.2)
    counts = served()
    assert not [key for key in counts if key[1].startswith("5")], counts
    assert {path: counts.get((path, "499")) for path in paths} == dict.fromkeys(paths, 1.0)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert not [line for line in lines if line["level"] in ("error", "critical")], "nothing logged as an error"
    assert sum(1 for line in lines if line.get("status") == 499 and line["level"] == "info") == len(paths)


def _metric_pids(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        sample.labels["pid"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "ticket_router_model_info" and sample.value == 1
    }


@pytest.mark.parametrize("server", [{"TICKET_ROUTER_WORKERS": "2"}], indirect=True)
def test_a_killed_worker_leaves_no_series_behind(server: tuple[str, subprocess.Popen[bytes], Path]) -> None:
    url, process, _ = server
    workers = psutil.Process(process.pid).children()
    assert len(workers) == 2
    deadline = time.monotonic() + 20
    while _metric_pids(url) != {str(w.pid) for w in workers} and time.monotonic() < deadline:
        time.sleep(0.2)  # each worker reports once it has served
    assert _metric_pids(url) == {str(w.pid) for w in workers}
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    deadline = time.monotonic() + 30
    live: set[str] = set()
    while time.monotonic() < deadline:
        live = {str(w.pid) for w in psutil.Process(process.pid).children() if w.status() != psutil.STATUS_ZOMBIE}
        if len(live) == 2 and _metric_pids(url) == live:
            break
        time.sleep(0.3)
    assert str(victim.pid) not in _metric_pids(url), "the dead worker's model_info series is gone"
    assert _metric_pids(url) == live and len(live) == 2, "one version per live worker: no 'two versions' alert"


def _training_processes(root: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(root).children(recursive=True) if "service.training_worker" in p.cmdline()]


def test_a_training_process_ends_with_its_job_and_with_the_server(tmp_path: Path) -> None:
    env = fresh_env(tmp_path, TICKET_ROUTER_ADMIN_TOKEN="hardening-admin")
    port = free_port()
    process = start_server(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        job = httpx.post(f"{url}/v1/models", json={"activate": False}, headers=ADMIN).json()
        deadline = time.monotonic() + 120
        status = "queued"
        while status in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.5)
            status = httpx.get(f"{url}/v1/jobs/{job['id']}", headers=ADMIN).json()["status"]
        assert status == "succeeded"
        time.sleep(0.5)
        assert _training_processes(process.pid) == [], "no training process outlives its job"

        httpx.post(f"{url}/v1/models", json={"activate": False}, headers=ADMIN)
        deadline = time.monotonic() + 30
        while not _training_processes(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [*psutil.Process(process.pid).children(recursive=True)]
        assert any("service.training_worker" in p.cmdline() for p in left)
    except BaseException:
        stop_server(process)
        raise
    os.kill(process.pid, signal.SIGKILL)  # the main process dies outright: nobody can stop the others
    process.wait()
    _, alive = psutil.wait_procs(left, timeout=20)
    assert alive == [], f"orphans: {[' '.join(p.cmdline()) for p in alive]}"
