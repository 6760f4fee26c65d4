"""Load test: a steady request rate on /v1/classify for a minute, several worker processes, loopback only.

First the maximum throughput is measured (closed loop, 32 connections, 5 s); then half of it is
held for ``DURATION`` seconds. Goals: zero errors, p99 under 50 ms, memory growth under 10%.
"""

from __future__ import annotations

import os

from bench.common import console, load, serve, table, trained_data_dir
from bench.http import classify_requests

WORKERS = 2
DURATION = float(os.environ.get("TICKET_ROUTER_LOADTEST_SECONDS", "60"))


def run() -> dict[str, float]:
    requests = classify_requests()
    with (
        trained_data_dir() as data_dir,
        serve(data_dir, workers=WORKERS) as server,
    ):
        load(server.port, requests, 32, 3.0)  # warm-up
        before = sum(server.worker_rss_mb())
        peak = load(server.port, requests, 32, 5.0)
        rate = peak.rate / 2
        steady = load(server.port, requests, 32, DURATION, rate=rate)
        after = sum(server.worker_rss_mb())
    figures = {
        "max_rps": peak.rate,
        "target_rps": rate,
        "steady_rps": steady.rate,
        "requests": steady.requests,
        "errors": steady.errors,
        "p50_ms": steady.percentile(50),
        "p99_ms": steady.percentile(99),
        "rss_before_mb": before,
        "rss_after_mb": after,
        "rss_growth": after / before - 1,
    }
    console.print(
        table(
            f"Load test: /v1/classify, {WORKERS} workers, {DURATION:.0f} s at half the measured maximum, 127.0.0.1",
            ["measure", "value", "goal"],
            [
                ["maximum throughput (closed loop, 32 connections)", f"{peak.rate:.0f} req/s", ""],
                ["held rate", f"{steady.rate:.0f} req/s (target {rate:.0f})", ""],
                ["requests / errors", f"{steady.requests} / {steady.errors}", "0 errors"],
                ["latency p50 / p99", f"{steady.percentile(50):.1f} / {steady.percentile(99):.1f} ms", "p99 < 50 ms"],
                [
                    "workers' RSS before / after",
                    f"{before:.0f} / {after:.0f} MB ({figures['rss_growth']:+.1%})",
                    "< +10%",
                ],
            ],
        )
    )
    return figures


if __name__ == "__main__":
    run()
