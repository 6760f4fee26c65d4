"""HTTP speed: /v1/classify against a trivial endpoint of the same app, same server, same load."""

from __future__ import annotations

import msgspec

from bench.common import HOLDOUT, TRAINING_DATA, console, http_request, load, serve, table, trained_data_dir
from model.dataset import example_files, load_examples


def classify_requests(limit: int = 500) -> list[bytes]:
    """POST /v1/classify requests with real-looking tickets (held-out ones when present)."""
    source = HOLDOUT if HOLDOUT.exists() else TRAINING_DATA / "examples"
    tickets = load_examples(example_files(source), None)[:limit]
    return [
        http_request("POST", "/v1/classify", msgspec.json.encode({"title": t.title, "body": t.body})) for t in tickets
    ]


def run(duration: float = 5.0, concurrency: int = 16) -> dict[str, float]:
    rows = []
    figures: dict[str, float] = {}
    with trained_data_dir() as data_dir, serve(data_dir, workers=1) as server:
        trivial = [http_request("GET", "/healthz")]
        classify = classify_requests()
        load(server.port, trivial, concurrency, 1.0)  # warm-up
        load(server.port, classify, concurrency, 1.0)
        for name, requests in [("GET /healthz (trivial)", trivial), ("POST /v1/classify", classify)]:
            result = load(server.port, requests, concurrency, duration)
            key = "trivial" if "healthz" in name else "classify"
            figures[f"{key}_rps"] = result.rate
            figures[f"{key}_p50_ms"] = result.percentile(50)
            figures[f"{key}_p99_ms"] = result.percentile(99)
            figures[f"{key}_errors"] = result.errors
            rows.append(
                [
                    name,
                    f"{result.requests}",
                    f"{result.rate:.0f}",
                    f"{result.percentile(50):.2f}",
                    f"{result.percentile(99):.2f}",
                    str(result.errors),
                ]
            )
    figures["ratio"] = figures["classify_rps"] / figures["trivial_rps"]
    rows.append(["classify / trivial throughput", "", f"{figures['ratio']:.2f} (goal >= 0.40)", "", "", ""])
    console.print(
        table(
            f"HTTP on 127.0.0.1, 1 worker, {concurrency} keep-alive connections, {duration:.0f} s each",
            ["endpoint", "requests", "req/s", "p50 ms", "p99 ms", "errors"],
            rows,
        )
    )
    return figures


if __name__ == "__main__":
    run()
