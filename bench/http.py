"""HTTP speed and resilience, granian beside uvicorn: /v1/classify against a trivial endpoint, and idle connections.

Each server runs the same app (``bench/echo_app.py``) with one worker: granian as
``ticket-router serve`` runs it, uvicorn as the service ran it before (``bench/serve_app.py``).
For each: start-up time to ``/readyz``, requests/s of ``/v1/classify`` and of a trivial endpoint
at several connection counts (goal: classify/trivial >= 0.40 from 16 connections), and what
four classify clients see while 1,005 other connections never finish their headers.
"""

from __future__ import annotations

import os

import msgspec

from bench.common import (
    HOLDOUT,
    TRAINING_DATA,
    LoadResult,
    console,
    http_request,
    idle_probe,
    load,
    serve,
    table,
    trained_data_dir,
)
from model.dataset import example_files, load_examples

CONCURRENCY = (8, 16, 32, 64)
SERVERS = tuple(os.environ.get("TICKET_ROUTER_BENCH_SERVERS", "granian,uvicorn").split(","))
IDLE_CONNECTIONS = 1005


def classify_requests(limit: int = 500) -> list[bytes]:
    """POST /v1/classify requests with real-looking tickets (held-out ones when present)."""
    source = HOLDOUT if HOLDOUT.exists() else TRAINING_DATA / "examples"
    tickets = load_examples(example_files(source), None)[:limit]
    return [
        http_request("POST", "/v1/classify", msgspec.json.encode({"title": t.title, "body": t.body})) for t in tickets
    ]


def run(duration: float = 5.0) -> dict[str, float]:
    """Each server in turn on the same trained data dir, 1 worker."""
    rows = []
    idle_rows = []
    figures: dict[str, float] = {}
    classify = classify_requests()
    echo = [r.replace(b"POST /v1/classify ", b"POST /bench/echo ") for r in classify]
    health = [http_request("GET", "/healthz")]
    with trained_data_dir() as data_dir:
        for name in SERVERS:
            with serve(data_dir, workers=1, factory="bench.echo_app:app", server=name) as server:
                figures[f"{name}_startup_s"] = server.started_in
                for requests in (health, echo, classify):
                    load(server.port, requests, 16, 1.0)  # warm-up
                result = load(server.port, health, 16, duration)
                rows.append([name, "GET /healthz", "16", *_cells(result), ""])
                for concurrency in CONCURRENCY:
                    rates = {}
                    for label, key, requests in [
                        ("POST /bench/echo (trivial)", "echo", echo),
                        ("POST /v1/classify", "classify", classify),
                    ]:
                        result = load(server.port, requests, concurrency, duration)
                        rates[key] = result.rate
                        figures[f"{name}_{key}_{concurrency}_rps"] = result.rate
                        figures[f"{name}_{key}_{concurrency}_p99_ms"] = result.percentile(99)
                        ratio = f"{rates['classify'] / rates['echo']:.2f}" if key == "classify" else ""
                        rows.append([name, label, str(concurrency), *_cells(result), ratio])
                    figures[f"{name}_ratio_{concurrency}"] = rates["classify"] / rates["echo"]
                probe = idle_probe(server.port, IDLE_CONNECTIONS)
                figures[f"{name}_idle_ok"] = probe.ok / probe.total if probe.total else 0.0
                idle_rows.append(
                    [
                        name,
                        f"{server.started_in:.2f}",
                        f"{probe.opened}",
                        f"{probe.ok} / {probe.total}",
                        ", ".join(f"{k}: {v}" for k, v in sorted(probe.statuses.items(), key=str) if k != 200) or "-",
                        f"{probe.percentile(99):.1f}",
                        f"{probe.closed_by_server} in {probe.seconds:.0f} s",
                    ]
                )
    console.print(
        table(
            f"HTTP on 127.0.0.1, 1 worker, keep-alive connections, {duration:.0f} s a run; trivial = same app,"
            " same request body decoded, no decision (goal: classify/trivial >= 0.40 from 16 connections)",
            ["server", "endpoint", "connections", "req/s", "p50 ms", "p99 ms", "errors", "classify/trivial"],
            rows,
        )
    )
    console.print(
        table(
            f"Start-up, and {IDLE_CONNECTIONS} connections that never finish their headers (one header every 2 s)"
            " while 4 other clients classify",
            ["server", "start-up s", "slow connections", "classify 200", "other answers", "p99 ms", "closed by server"],
            idle_rows,
        )
    )
    return figures


def _cells(result: LoadResult) -> list[str]:
    return [
        f"{result.rate:.0f}",
        f"{result.percentile(50):.2f}",
        f"{result.percentile(99):.2f}",
        str(result.errors),
    ]


if __name__ == "__main__":
    run()
