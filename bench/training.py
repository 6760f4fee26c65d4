"""Training speed as a user meets it: the first start from an empty registry, and a retraining
(CLI and API job, the promotion gate included), with the model's cross-validated figures.

Goals (two idle cores): first start <= 15 s, retraining <= 30 s. Whole commands are timed from
outside (process start to exit), the median of three runs; the API job from `POST /v1/models` to a
finished `GET /v1/jobs/{id}`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import TRAINING_DATA, console, serve, table

CLI = str(Path(sys.executable).parent / "ticket-router")
RUNS = 3


def _timed(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _api_job(data_dir: Path) -> tuple[float, str]:
    admin = {"Authorization": "Bearer bench-admin"}
    with serve(data_dir, extra_env={"TICKET_ROUTER_ADMIN_TOKEN": "bench-admin"}) as server:
        started = time.perf_counter()
        job = httpx.post(f"{server.url}/v1/models", json={"note": "bench"}, headers=admin).json()
        while job["status"] in {"queued", "running"}:
            time.sleep(0.2)
            job = httpx.get(f"{server.url}/v1/jobs/{job['id']}", headers=admin).json()
        return time.perf_counter() - started, job["status"]


def run() -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="bench-training-"))
    env = {**os.environ, "TICKET_ROUTER_TRAINING_DATA": str(TRAINING_DATA)}
    figures: dict[str, float] = {}
    try:
        first = []
        for i in range(RUNS):
            data_dir = base / f"first-{i}"
            first.append(_timed([CLI, "init"], {**env, "TICKET_ROUTER_DATA_DIR": str(data_dir)}))
        data_dir = base / "first-0"
        env["TICKET_ROUTER_DATA_DIR"] = str(data_dir)
        retrain = [_timed([CLI, "train", "--no-activate"], env) for _ in range(RUNS)]
        api, status = _api_job(data_dir)
        listing = subprocess.run([CLI, "models", "list", "--json"], env=env, check=True, capture_output=True)
        active = next(row for row in json.loads(listing.stdout) if row["active"])
        shown = subprocess.run([CLI, "models", "show", active["version"]], env=env, check=True, capture_output=True)
        manifest = json.loads(shown.stdout)
        cv = manifest["report"]["cv"]
        figures = {
            "first_start_s": statistics.median(first),
            "retrain_cli_s": statistics.median(retrain),
            "retrain_api_s": api,
            "cv_macro_f1": cv["macro_f1"],
            "cv_ece": cv["ece"],
            "examples": manifest["report"]["n_examples"],
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    console.print(
        table(
            f"Training speed ({figures['examples']:.0f} examples, {os.cpu_count()} cores; median of {RUNS} runs)",
            ["measure", "value", "goal"],
            [
                [
                    "first start: `ticket-router init` on an empty registry",
                    f"{figures['first_start_s']:.1f} s",
                    "<= 15 s",
                ],
                ["retraining: `ticket-router train` with the gate", f"{figures['retrain_cli_s']:.1f} s", "<= 30 s"],
                [
                    f"retraining: POST /v1/models until the job is {status}",
                    f"{figures['retrain_api_s']:.1f} s",
                    "<= 30 s",
                ],
                ["cross-validated macro-F1 / ECE", f"{figures['cv_macro_f1']:.4f} / {figures['cv_ece']:.4f}", ""],
            ],
        )
    )
    return figures


if __name__ == "__main__":
    run()
