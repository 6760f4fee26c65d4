"""Run every benchmark and print its table: ``python -m bench [name ...]``."""

from __future__ import annotations

import importlib
import sys
import time

from bench.common import console

BENCHMARKS = [
    "accuracy",
    "history",
    "questions",
    "learning",
    "training",
    "latency",
    "batch",
    "footprint",
    "http",
    "webhooks",
    "loadtest",
    "replicas",
    "console",
    "adversarial",
    "readme",
]


def main(names: list[str]) -> None:
    chosen = names or BENCHMARKS
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    for name in chosen:
        started = time.perf_counter()
        console.rule(f"bench.{name}")
        importlib.import_module(f"bench.{name}").run()
        console.print(f"[dim]bench.{name} took {time.perf_counter() - started:.0f} s[/dim]")


if __name__ == "__main__":
    main(sys.argv[1:])
