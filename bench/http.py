"""HTTP speed: /v1/classify against a trivial endpoint of the same app, same server, same load."""

from __future__ import annotations

import msgspec

from bench.common import HOLDOUT, TRAINING_DATA, console, http_request, load, serve, table, trained_data_dir
from model.dataset import example_files, load_examples

CONCURRENCY = (8, 16, 32, 64)


def classify_requests(limit: int = 500) -> list[bytes]:
    """POST /v1/classify requests with real-looking tickets (held-out ones when present)."""
    source = HOLDOUT if HOLDOUT.exists() else TRAINING_DATA / "examples"
    tickets = load_examples(example_files(source), None)[:limit]
    return [
        http_request("POST", "/v1/classify", msgspec.json.encode({"title": t.title, "body": t.body})) for t in tickets
    ]


def run(duration: float = 5.0) -> dict[str, float]:
    """Echo and classify at each concurrency, alternating, on one server process (1 worker)."""
    rows = []
    figures: dict[str, float] = {}
    with trained_data_dir() as data_dir, serve(data_dir, workers=1, factory="bench.echo_app:app") as server:
        classify = classify_requests()
        echo = [r.replace(b"POST /v1/classify ", b"POST /bench/echo ") for r in classify]
        health = [http_request("GET", "/healthz")]
        for requests in (health, echo, classify):
            load(server.port, requests, 16, 1.0)  # warm-up
        result = load(server.port, health, 16, duration)
        rows.append(
            [
                "GET /healthz",
                "16",
                f"{result.rate:.0f}",
                f"{result.percentile(50):.2f}",
                f"{result.percentile(99):.2f}",
                str(result.errors),
                "",
            ]
        )
        for concurrency in CONCURRENCY:
            rates = {}
            for name, key, requests in [
                ("POST /bench/echo (trivial)", "echo", echo),
                ("POST /v1/classify", "classify", classify),
            ]:
                result = load(server.port, requests, concurrency, duration)
                rates[key] = result.rate
                figures[f"{key}_{concurrency}_rps"] = result.rate
                figures[f"{key}_{concurrency}_p50_ms"] = result.percentile(50)
                figures[f"{key}_{concurrency}_p99_ms"] = result.percentile(99)
                figures[f"{key}_{concurrency}_errors"] = result.errors
                ratio = f"{rates['classify'] / rates['echo']:.2f}" if key == "classify" else ""
                rows.append(
                    [
                        name,
                        str(concurrency),
                        f"{result.rate:.0f}",
                        f"{result.percentile(50):.2f}",
                        f"{result.percentile(99):.2f}",
                        str(result.errors),
                        ratio,
                    ]
                )
            figures[f"ratio_{concurrency}"] = rates["classify"] / rates["echo"]
    console.print(
        table(
            f"HTTP on 127.0.0.1, 1 worker, keep-alive connections, {duration:.0f} s a run; trivial = same app,"
            " same request body decoded, no decision (goal: classify/trivial >= 0.40)",
            ["endpoint", "connections", "req/s", "p50 ms", "p99 ms", "errors", "classify/trivial"],
            rows,
        )
    )
    return figures


if __name__ == "__main__":
    run()
