"""Webhook answer time against classification alone, with a slow tracker behind the write-back.

A real ``ticket-router serve`` process gets signed GitHub ``issues`` deliveries one at a time
(each a new issue, so each queues a write-back); its GitHub API URL points at a local fake
tracker that takes TRACKER_DELAY seconds per request. The table compares the webhook's
answer time with ``POST /v1/classify`` on the same tickets and with an ignored delivery (a
ping), and shows when the label reached the tracker after the answer: the answer does not
wait for the tracker.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np

from bench.common import HOLDOUT, TRAINING_DATA, console, serve, table, trained_data_dir
from model.dataset import example_files, load_examples

SECRET = "bench-secret"
TRACKER_DELAY = 0.3
ROUNDS = 200


class FakeTracker:
    """A loopback HTTP server that answers every request with 200 after ``delay``, noting arrival times."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: dict[str, float] = {}
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeTracker:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                path = head.split(b" ", 2)[1].decode()
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                self.arrivals[path] = time.time()
                await asyncio.sleep(self.delay)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _tickets(limit: int) -> list[tuple[str, str]]:
    source = HOLDOUT if HOLDOUT.exists() else TRAINING_DATA / "examples"
    return [(t.title or "", t.body or "") for t in load_examples(example_files(source), None)[:limit]]


def _issue(number: int, title: str, body: str) -> bytes:
    return json.dumps(
        {
            "action": "opened",
            "issue": {"number": number, "title": title, "body": body, "labels": [], "state": "open"},
            "repository": {"full_name": "acme/shop"},
            "sender": {"login": "octocat", "type": "User"},
        }
    ).encode()


def _headers(body: bytes, event: str = "issues") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


async def _measure(url: str, tickets: list[tuple[str, str]], first: int = 1) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"classify": [], "ping": [], "webhook": []}
    answered: dict[int, float] = {}
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for i, (title, body) in enumerate(tickets):
            t0 = time.perf_counter()
            response = await client.post("/v1/classify", json={"title": title, "body": body})
            times["classify"].append((time.perf_counter() - t0) * 1000)
            assert response.status_code == 200, response.text
            t0 = time.perf_counter()
            response = await client.post("/v1/webhooks/github", content=ping, headers=_headers(ping, "ping"))
            times["ping"].append((time.perf_counter() - t0) * 1000)
            assert response.json()["outcome"] == "ignored"
            payload = _issue(first + i, title, body)
            t0 = time.perf_counter()
            response = await client.post("/v1/webhooks/github", content=payload, headers=_headers(payload))
            times["webhook"].append((time.perf_counter() - t0) * 1000)
            answered[first + i] = time.time()
            assert response.json()["write_back"] == "pending", response.text
    times["answered"] = [answered[n] for n in sorted(answered)]
    return times


def run(rounds: int = ROUNDS) -> dict[str, float]:
    tickets = _tickets(rounds)
    with FakeTracker(TRACKER_DELAY) as tracker, trained_data_dir() as data_dir:
        env = {
            "TICKET_ROUTER_GITHUB_WEBHOOK_SECRET": SECRET,
            "TICKET_ROUTER_GITHUB_TOKEN": "bench-token",
            "TICKET_ROUTER_GITHUB_API_URL": f"http://127.0.0.1:{tracker.port}",
            "TICKET_ROUTER_WRITEBACK_POLL_SECONDS": "0.5",
        }
        with serve(Path(data_dir), workers=1, extra_env=env) as server:
            asyncio.run(_measure(server.url, tickets[:20], first=100_000))  # warm-up, other issue numbers
            while len(tracker.arrivals) < 20:  # let the warm-up's write-backs drain
                time.sleep(0.05)
            time.sleep(TRACKER_DELAY * 2)
            times = asyncio.run(_measure(server.url, tickets))
            expected = {f"/repos/acme/shop/issues/{n}/labels" for n in range(1, len(tickets) + 1)}
            deadline = time.monotonic() + 60 + rounds * TRACKER_DELAY
            while not expected <= set(tracker.arrivals) and time.monotonic() < deadline:
                time.sleep(0.05)
    lags = [
        (tracker.arrivals[f"/repos/acme/shop/issues/{n}/labels"] - at) * 1000
        for n, at in enumerate(times["answered"], start=1)
        if f"/repos/acme/shop/issues/{n}/labels" in tracker.arrivals
    ]
    figures: dict[str, float] = {}
    rows = []
    for key, name in [
        ("classify", "POST /v1/classify (same tickets)"),
        ("ping", "POST /v1/webhooks/github ping (ignored)"),
        ("webhook", "POST /v1/webhooks/github issues opened (classified)"),
    ]:
        values = np.asarray(times[key])
        figures[f"{key}_p50_ms"] = float(np.percentile(values, 50))
        figures[f"{key}_p99_ms"] = float(np.percentile(values, 99))
        rows.append([name, str(values.size), f"{figures[f'{key}_p50_ms']:.2f}", f"{figures[f'{key}_p99_ms']:.2f}"])
    figures["writebacks_delivered"] = len(lags)
    figures["lag_min_ms"] = float(np.min(lags)) if lags else float("nan")
    figures["lag_p50_ms"] = float(np.percentile(lags, 50)) if lags else float("nan")
    console.print(
        table(
            "Webhook answers (1 worker, sequential, signed deliveries;"
            f" fake tracker takes {TRACKER_DELAY * 1000:.0f} ms a request)",
            ["request", "n", "p50 ms", "p99 ms"],
            rows,
        )
    )
    overhead = figures["webhook_p50_ms"] - figures["classify_p50_ms"]
    console.print(
        f"webhook minus classify, p50: {overhead:.2f} ms (verify, de-duplicate, store delivery and write-back);"
        f"\nlabel requests that reached the tracker: {len(lags)}/{len(tickets)}; they arrived after the answer by"
        f" {figures['lag_min_ms']:.0f} ms at least, {figures['lag_p50_ms']:.0f} ms at the median (a backlog: the"
        f" worker runs 4 tickets at a time against a tracker taking {TRACKER_DELAY * 1000:.0f} ms each)"
    )
    figures["overhead_p50_ms"] = overhead
    return figures


if __name__ == "__main__":
    run()
