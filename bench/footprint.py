"""Training time, model size, start-up time with an existing model, and serving memory."""

from __future__ import annotations

import time

import httpx

from bench.common import TRAINING_DATA, console, load, serve, table, trained_data_dir
from bench.http import classify_requests
from model.dataset import load_training_data
from model.registry import Registry
from model.training import train


def run() -> dict[str, float]:
    data = load_training_data(TRAINING_DATA)
    t0 = time.perf_counter()
    model = train(data.taxonomy, data.examples)
    training_s = time.perf_counter() - t0
    figures: dict[str, float] = {"training_s": training_s, "examples": len(data.examples)}
    with trained_data_dir() as data_dir:
        registry = Registry(data_dir / "models")
        version = registry.active_version()
        assert version is not None
        figures["artifact_mb"] = (data_dir / "models" / version / "model.joblib").stat().st_size / 1e6
        figures["features"] = len(model.pipeline.named_steps["tfidf"].vocabulary_)
        starts = []
        for _ in range(3):
            with serve(data_dir) as server:
                starts.append(server.started_in)
        figures["startup_s"] = min(starts)
        with serve(data_dir) as server:
            httpx.post(f"{server.url}/v1/classify", json={"title": "warm-up"})
            figures["rss_idle_mb"] = server.worker_rss_mb()[0]
            load(server.port, classify_requests(), 16, 10.0)
            figures["rss_loaded_mb"] = server.worker_rss_mb()[0]
    console.print(
        table(
            "Footprint",
            ["measure", "value", "goal"],
            [
                ["training time (5-fold CV + final fit)", f"{figures['training_s']:.1f} s", ""],
                ["examples / TF-IDF features", f"{len(data.examples)} / {figures['features']:.0f}", ""],
                ["model artifact (joblib, compressed)", f"{figures['artifact_mb']:.2f} MB", ""],
                ["start-up to /readyz with a model (best of 3)", f"{figures['startup_s']:.2f} s", "< 2 s"],
                ["worker RSS idle", f"{figures['rss_idle_mb']:.0f} MB", "< 250 MB"],
                ["worker RSS after 10 s of load", f"{figures['rss_loaded_mb']:.0f} MB", "< 250 MB"],
            ],
        )
    )
    return figures


if __name__ == "__main__":
    run()
