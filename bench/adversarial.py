"""The adversarial probe, replayed: ``python -m bench adversarial`` prints held/broke for each fault it once found.

Real servers on 127.0.0.1 (two workers; PostgreSQL when it answers on 127.0.0.1:5432 or at
TICKET_ROUTER_TEST_DATABASE_URL, else SQLite), a fake GitHub API on another loopback port (one
repository hangs, one applies comments but answers too late), and the probes of issue 13: idle
connections, token spellings and guesses, unstorable values, disconnects, a hanging tracker, lost
comment answers, path tricks, replays, killed workers and training processes, content types. The
next probe starts from here. ``TICKET_ROUTER_ADVERSARIAL_IDLE`` sets the idle connections (3000).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil
import psycopg

from bench.common import console, idle_probe, serve, table, trained_data_dir

IDLE = int(os.environ.get("TICKET_ROUTER_ADVERSARIAL_IDLE", "3000"))
PG_URL = os.environ.get("TICKET_ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "adversarial-webhook-secret"
ADMIN = "adversarial-admin"
TOKEN = "adversarial-token"


@dataclass
class Verdict:
    """One probe's result."""

    point: str
    probe: str
    held: bool
    detail: str


# -- a fake GitHub API ---------------------------------------------------------------------------


@dataclass
class FakeGitHub:
    """Records every request; ``/repos/slow/`` hangs; ``/repos/acme/lossy/`` comments answer too late."""

    requests: list[tuple[str, str, float]] = field(default_factory=list)
    comments: dict[str, list[str]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the router gave up waiting
                    self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, time.monotonic()))
                issue = self.path.split("/comments")[0]
                self._answer(200, [{"id": i, "body": b} for i, b in enumerate(fake.comments.get(issue, []))])

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                fake.requests.append(("POST", self.path, time.monotonic()))
                if self.path.startswith("/repos/slow/"):
                    fake.release.wait(60)
                if self.path.endswith("/comments"):
                    issue = self.path.removesuffix("/comments")
                    fake.comments.setdefault(issue, []).append(json.loads(body)["body"])
                    if self.path.startswith("/repos/acme/lossy/"):
                        time.sleep(3)  # applied, but the answer comes after the router's timeout
                self._answer(200, [])

            do_DELETE = do_POST

        return Handler

    def paths(self, prefix: str) -> list[str]:
        return [path for _, path, _ in self.requests if path.startswith(prefix)]


@contextlib.contextmanager
def fake_github() -> Iterator[tuple[FakeGitHub, str]]:
    fake = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), fake.handler())
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        fake.release.set()
        server.shutdown()
        server.server_close()


# -- helpers -------------------------------------------------------------------------------------


@contextlib.contextmanager
def database() -> Iterator[str | None]:
    """A fresh PostgreSQL database, or None (SQLite) when no server answers."""
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        yield None
        return
    name = f"ticket_router_adversarial_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def delivery(
    url: str,
    repo: str = "acme/shop",
    number: int | str = 12,
    title: str = "p99 latency above 2s on checkout",
    **extra: Any,
) -> httpx.Response:
    # A number given as text is written as digits, however many: a JSON number no column can hold.
    body = (
        extra.pop("body", None)
        or json.dumps(
            {
                "action": "opened",
                "issue": {"number": "NUMBER", "title": title, "body": "Grafana shows 503s", "labels": []},
                "repository": {"full_name": repo},
                "sender": {"login": "mallory", "type": "User"},
            }
        )
        .replace('"NUMBER"', str(number))
        .encode()
    )
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": extra.pop("delivery", None) or uuid.uuid4().hex,
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    return httpx.post(f"{url}/v1/webhooks/github", content=body, headers=headers, timeout=30)


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


def metric_samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def wait_for(condition: Callable[[], bool], seconds: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def guarded(point: str, probe: str, check: Callable[[], tuple[bool, str]]) -> Verdict:
    try:
        held, detail = check()
    except Exception as exc:  # a probe that cannot even run broke something
        held, detail = False, f"{exc.__class__.__name__}: {exc}"[:200]
    return Verdict(point, probe, held, detail)


# -- the probes ----------------------------------------------------------------------------------


def probe_idle(url: str, port: int) -> tuple[bool, str]:
    result = idle_probe(port, IDLE, seconds=14.0, headers=f"Authorization: Bearer {ADMIN}\r\n")
    p99 = result.percentile(99)
    held = result.ok == result.total > 0 and p99 < 100 and result.closed_by_server == result.opened
    return held, (
        f"{result.opened} slow connections: classify {result.ok}/{result.total} ok, p99 {p99:.1f} ms,"
        f" {result.closed_by_server} closed by the server within {result.seconds:.0f} s"
    )


def probe_token_spellings(url: str) -> tuple[bool, str]:
    spellings = [f"Bearer {TOKEN}", f"bearer {TOKEN}", f"BEARER {TOKEN}", f"Bearer   {TOKEN}", f"bEaReR  {TOKEN}"]
    statuses = [
        httpx.post(f"{url}/v1/classify", json={"title": "disk full"}, headers={"Authorization": s}).status_code
        for s in spellings * 12
    ]
    passed = statuses.count(200)
    return passed <= 20, f"{passed} of 60 requests in 5 spellings of one token passed a 20/minute limit"


def probe_guesses(url: str) -> tuple[bool, str]:
    statuses = [
        httpx.post(
            f"{url}/v1/classify", json={"title": "x"}, headers={"Authorization": f"Bearer guess-{i}"}
        ).status_code
        for i in range(300)
    ]
    return statuses.count(429) > 0, f"300 wrong tokens: {statuses.count(401)} x 401, {statuses.count(429)} x 429"


def probe_bogus_memory(url: str, server_pid: int) -> tuple[bool, str]:
    workers = psutil.Process(server_pid).children() or [psutil.Process(server_pid)]
    before = sum(w.memory_info().rss for w in workers)
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(20_000):
            client.get("/v1/teams", headers={"Authorization": f"Bearer bogus-{uuid.uuid4().hex}-{i}"})
    after = sum(w.memory_info().rss for w in workers)
    growth = (after - before) / 1e6
    return growth < 5, f"20,000 distinct bogus tokens: worker RSS {growth:+.1f} MB (was +6.6 MB per 20k)"


def probe_storable(url: str, backend: str) -> tuple[bool, str]:
    huge = delivery(url, number="1" + "0" * 599)
    nul_text = httpx.post(f"{url}/v1/feedback", json={"text": "disk\x00 full", "team": "SRE"}, headers=admin())
    nul_actor = httpx.post(
        f"{url}/v1/feedback", json={"text": "disk full", "team": "SRE", "actor": "a\x00"}, headers=admin()
    )
    nul_action = delivery(
        url,
        body=json.dumps(
            {
                "action": "open\u0000ed",
                "issue": {"number": 5, "title": "x", "labels": []},
                "repository": {"full_name": "acme/shop"},
                "sender": {"login": "m"},
            }
        ).encode(),
    )
    results = {
        "600-digit issue": huge.status_code,
        "NUL text": nul_text.status_code,
        "NUL actor": nul_actor.status_code,
        "NUL action": nul_action.status_code,
    }
    held = results == {"600-digit issue": 422, "NUL text": 201, "NUL actor": 422, "NUL action": 200}
    return held, f"{backend}: " + ", ".join(f"{k} {v}" for k, v in results.items())


def probe_batch_mates(url: str) -> tuple[bool, str]:
    from concurrent.futures import ThreadPoolExecutor

    def classify(i: int) -> int:
        return httpx.post(f"{url}/v1/classify", json={"title": f"disk full {i}"}, headers=admin()).status_code

    def bad(i: int) -> int:
        return delivery(url, number="9" * 600, delivery=f"bad-{i}").status_code

    with ThreadPoolExecutor(16) as pool:
        good = list(pool.map(classify, range(600)))
        refused = list(pool.map(bad, range(40)))
    failed = len([s for s in good if s != 200])
    return failed == 0, f"{failed} of 600 classify requests failed beside 40 unstorable deliveries ({set(refused)})"


def probe_disconnects(url: str, port: int) -> tuple[bool, str]:
    def fives() -> float:
        return sum(
            v
            for labels, v in metric_samples(url, "ticket_router_requests_total")
            if labels["status_code"].startswith("5")
        )

    before = fives()
    for i in range(15):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            path = ["/v1/classify", "/v1/feedback", "/v1/webhooks/github"][i % 3]
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f'Authorization: Bearer {ADMIN}\r\nContent-Length: 9000\r\n\r\n{{"title": '.encode()
            )
            time.sleep(0.05)
    time.sleep(1.0)
    after = fives()
    closed = sum(
        v for labels, v in metric_samples(url, "ticket_router_requests_total") if labels["status_code"] == "499"
    )
    return after == before, f"15 disconnects mid-body: {after - before:.0f} new 5xx, {closed:.0f} recorded as 499"


def probe_hanging_tracker(url: str, fake: FakeGitHub) -> tuple[bool, str]:
    for number in range(1, 9):
        delivery(url, repo="slow/repo", number=number, title=f"p99 latency above 2s, case {number}")
    sent = time.monotonic()
    delivery(url, repo="acme/healthy", number=1)
    arrived = wait_for(lambda: bool(fake.paths("/repos/acme/healthy/")), 30)
    delay = (next(t for m, p, t in fake.requests if p.startswith("/repos/acme/healthy/")) - sent) if arrived else 99.0
    wait_for(lambda: bool(httpx.get(f"{url}/v1/writebacks?status=failed", headers=admin()).json()["writebacks"]), 30)
    started = time.monotonic()
    retry = httpx.post(f"{url}/v1/writebacks/retry", headers=admin(), timeout=120)
    answered = time.monotonic() - started
    held = delay < 5 and answered < 2 and retry.status_code == 202
    return held, (
        f"healthy repository written {delay:.1f} s after 8 hanging ones (was 62 s);"
        f" retry answered {retry.status_code} in {answered:.2f} s (was 63 s)"
    )


def probe_lost_comment(url: str, fake: FakeGitHub) -> tuple[bool, str]:
    delivery(url, repo="acme/lossy", number=3)
    wait_for(lambda: len(fake.paths("/repos/acme/lossy/issues/3/comments")) >= 2, 30)
    time.sleep(2)
    count = len(fake.comments.get("/repos/acme/lossy/issues/3", []))
    return count == 1, f"a comment whose answer timed out appears {count} time(s) (was up to 4)"


def probe_paths(url: str, fake: FakeGitHub) -> tuple[bool, str]:
    statuses = [delivery(url, repo=repo, number=201).status_code for repo in ("../..", "acme/..", "acme/x/../..")]
    time.sleep(1)
    stray = [p for _, p, _ in fake.requests if not p.startswith("/repos/") or "/../" in p or p.startswith("/repos/..")]
    return statuses == [422] * 3 and not stray, f"path tricks answered {statuses}; requests off /repos/: {len(stray)}"


def probe_replay(url: str) -> tuple[bool, str]:
    body = json.dumps(
        {
            "action": "opened",
            "issue": {"number": 77, "title": "Disk full on db-1", "labels": []},
            "repository": {"full_name": "acme/replayed"},
            "sender": {"login": "m"},
        }
    ).encode()
    first = delivery(url, body=body).json()["outcome"]
    second = delivery(url, body=body).json()["outcome"]
    return (first, second) == ("classified", "duplicate"), f"same signed body, new delivery id: {first}, then {second}"


def probe_killed_worker(url: str, server_pid: int) -> tuple[bool, str]:
    def pids() -> set[str]:
        return {labels["pid"] for labels, v in metric_samples(url, "ticket_router_model_info") if v == 1}

    workers = psutil.Process(server_pid).children()
    wait_for(lambda: len(pids()) == len(workers), 20)
    victim = workers[0]
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)

    def settled() -> bool:
        live = {str(w.pid) for w in psutil.Process(server_pid).children() if w.status() != psutil.STATUS_ZOMBIE}
        return len(live) == len(workers) and pids() == live

    ok = wait_for(settled, 40)
    return ok and str(
        victim.pid
    ) not in pids(), f"after SIGKILL of a worker, model_info series: {len(pids())} (live workers {len(workers)})"


def probe_training(url: str, server_pid: int) -> tuple[bool, str]:
    def trainers() -> list[psutil.Process]:
        return [
            p
            for p in psutil.Process(server_pid).children(recursive=True)
            if "service.training_worker" in " ".join(p.cmdline())
        ]

    job = httpx.post(f"{url}/v1/models", json={"activate": False}, headers=admin()).json()
    wait_for(
        lambda: httpx.get(f"{url}/v1/jobs/{job['id']}", headers=admin()).json()["status"] not in ("queued", "running"),
        180,
        1.0,
    )
    after_job = len(trainers())
    httpx.post(f"{url}/v1/models", json={"activate": False}, headers=admin())
    wait_for(lambda: bool(trainers()), 30)
    running = trainers()
    owner = running[0].parent() if running else None
    if owner is not None:
        owner.send_signal(signal.SIGKILL)
    _, alive = psutil.wait_procs(running, timeout=20)
    held = after_job == 0 and bool(running) and not alive
    return held, f"training processes after the job: {after_job}; after SIGKILL of their worker: {len(alive)} left"


def probe_edges(url: str) -> tuple[bool, str]:
    evil = httpx.post(
        f"{url}/v1/classify", content=b'{"title": "x"}', headers={"content-type": "application/evil+json", **admin()}
    ).status_code
    bare = httpx.post(f"{url}/v1/classify/batch", content=b'{"items": [{"title": "x"}]}', headers=admin()).status_code
    schemes = httpx.get(f"{url}/schema/openapi.json").json().get("components", {}).get("securitySchemes", {})
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        long_path = sock.recv(200).split(b"\r\n\r\n")[0].decode()
    status_line = long_path.splitlines()[0] if long_path else "no answer"
    plain = "text/plain" in long_path
    held = evil == 415 and bare == 415 and {"apiToken", "adminToken"} <= set(schemes) and not plain
    return held, (
        f"evil+json {evil}, batch without Content-Type {bare}, security schemes {sorted(schemes)};"
        f" 70 kB path: {status_line}, {'text/plain' if plain else 'no body'} (documented)"
    )


# -- the run -------------------------------------------------------------------------------------


def run() -> dict[str, float]:
    verdicts: list[Verdict] = []
    with trained_data_dir() as data_dir, fake_github() as (fake, api), database() as pg:
        backend = "PostgreSQL" if pg else "SQLite"
        common = {
            "TICKET_ROUTER_ADMIN_TOKEN": ADMIN,
            "TICKET_ROUTER_API_TOKENS": TOKEN,
            "TICKET_ROUTER_GITHUB_WEBHOOK_SECRET": SECRET,
            "TICKET_ROUTER_GITHUB_TOKEN": "fake-github-token",
            "TICKET_ROUTER_GITHUB_API_URL": api,
            "TICKET_ROUTER_WRITE_BACK": "label+comment",
            "TICKET_ROUTER_WRITEBACK_TIMEOUT_SECONDS": "2",
            "TICKET_ROUTER_WRITEBACK_DEADLINE_SECONDS": "5",
            "TICKET_ROUTER_WRITEBACK_ATTEMPTS": "3",
            "TICKET_ROUTER_WRITEBACK_BACKOFF_SECONDS": "0.1",
        }
        limits = {**common, "TICKET_ROUTER_RATE_LIMIT": "20/minute", "TICKET_ROUTER_AUTH_FAILURE_LIMIT": "20/minute"}
        with serve(data_dir, workers=1, extra_env=limits) as server:
            url = server.url
            verdicts.append(guarded("2", "one token, five spellings", lambda: probe_token_spellings(url)))
            verdicts.append(guarded("2", "300 wrong tokens", lambda: probe_guesses(url)))
        with serve(
            data_dir,
            workers=1,
            extra_env={**limits, "TICKET_ROUTER_RATE_LIMIT": "off", "TICKET_ROUTER_AUTH_FAILURE_LIMIT": "off"},
        ) as server:
            pid = server.process.pid
            verdicts.append(guarded("2", "memory under distinct tokens", lambda: probe_bogus_memory(server.url, pid)))
        main_env = {**common, **({"TICKET_ROUTER_DATABASE_URL": pg} if pg else {})}
        if pg:  # with PostgreSQL the active pointer lives in the database: point it at the trained version
            from model.registry import Registry
            from service.pointers import registry_for
            from service.settings import Settings
            from service.store import Store

            on_pg = Settings(data_dir=data_dir, database_url=pg)
            version = Registry(on_pg.registry_dir).active_version()
            with Store.for_settings(on_pg) as store:
                registry_for(on_pg, store).activate(version or "", actor="bench")
        with serve(data_dir, workers=2, extra_env=main_env) as server:
            url, port, pid = server.url, server.port, server.process.pid
            verdicts.append(guarded("1", f"{IDLE} idle connections, 2 workers", lambda: probe_idle(url, port)))
            verdicts.append(guarded("3", "unstorable values", lambda: probe_storable(url, backend)))
            verdicts.append(guarded("3", "batch-mates of bad rows", lambda: probe_batch_mates(url)))
            verdicts.append(guarded("4", "disconnects mid-body", lambda: probe_disconnects(url, port)))
            verdicts.append(guarded("5", "a hanging tracker", lambda: probe_hanging_tracker(url, fake)))
            verdicts.append(guarded("6", "a comment whose answer is lost", lambda: probe_lost_comment(url, fake)))
            verdicts.append(guarded("7", "path tricks in a signed delivery", lambda: probe_paths(url, fake)))
            verdicts.append(guarded("8", "replay under a new delivery id", lambda: probe_replay(url)))
            verdicts.append(guarded("10", "content types, OpenAPI, long path", lambda: probe_edges(url)))
            verdicts.append(guarded("9", "a killed worker's series", lambda: probe_killed_worker(url, pid)))
            verdicts.append(guarded("9", "training processes", lambda: probe_training(url, pid)))
            fake.release.set()
    console.print(
        table(
            f"Adversarial probe (issue 13), 127.0.0.1, {backend}",
            ["point", "probe", "result", "what was seen"],
            [[v.point, v.probe, "held" if v.held else "[bold red]BROKE[/]", v.detail] for v in verdicts],
        )
    )
    return {f"{v.point}:{v.probe}": 1.0 if v.held else 0.0 for v in verdicts}


if __name__ == "__main__":
    run()
