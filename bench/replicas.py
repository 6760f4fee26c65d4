"""Scale-out: two replicas behind one port on loopback against one, sharing one PostgreSQL database.

Both replica processes listen on one port (SO_REUSEPORT), so the kernel spreads the
connections between them (a stand-in for the load balancer). Needs PostgreSQL (the server on
127.0.0.1:5432, or TICKET_ROUTER_TEST_DATABASE_URL); prints why it skipped otherwise.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg

from bench.common import TRAINING_DATA, console, free_port, load, table, trained_data_dir
from bench.http import classify_requests

PG_URL = os.environ.get("TICKET_ROUTER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as admin:
        name = f"ticket_router_bench_{secrets.token_hex(4)}"
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def replicas(count: int, env: dict[str, str]) -> Iterator[int]:
    """``count`` servers on one port: each binds it with SO_REUSEPORT and the kernel spreads connections."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "ticket-router"), "serve", "--port", str(port)]
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        time.sleep(1.0)  # every replica up, not just the first
        yield port
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


def run(duration: float = 10.0, concurrency: int = 32) -> dict[str, float]:
    try:
        database = fresh_database()
        url = database.__enter__()
    except psycopg.OperationalError as exc:
        console.print(f"bench.replicas skipped: PostgreSQL not reachable at {PG_URL} ({exc})")
        return {}
    figures: dict[str, float] = {}
    rows = []
    try:
        with trained_data_dir() as data_dir:
            env = {
                **os.environ,
                "TICKET_ROUTER_DATA_DIR": str(data_dir),
                "TICKET_ROUTER_TRAINING_DATA": str(TRAINING_DATA),
                "TICKET_ROUTER_DATABASE_URL": url,
                "TICKET_ROUTER_RATE_LIMIT": "off",
                "TICKET_ROUTER_LOG_LEVEL": "warning",
            }
            cli = str(Path(sys.executable).parent / "ticket-router")
            subprocess.run([cli, "init"], env=env, check=True, capture_output=True)
            requests = classify_requests()
            for count in (1, 2):
                with replicas(count, env) as port:
                    load(port, requests, concurrency, 2.0)
                    result = load(port, requests, concurrency, duration)
                figures[f"rps_{count}"] = result.rate
                figures[f"p99_{count}"] = result.percentile(99)
                rows.append(
                    [
                        f"{count} replica{'s' if count > 1 else ''}",
                        f"{result.rate:.0f}",
                        f"{result.percentile(50):.2f}",
                        f"{result.percentile(99):.2f}",
                        str(result.errors),
                    ]
                )
    finally:
        database.__exit__(None, None, None)
    rows.append(["2 / 1", f"{figures['rps_2'] / figures['rps_1']:.2f}", "", "", ""])
    console.print(
        table(
            f"Replicas on PostgreSQL behind one port (127.0.0.1, {concurrency} connections, {duration:.0f} s,"
            " /v1/classify)",
            ["setup", "req/s", "p50 ms", "p99 ms", "errors"],
            rows,
        )
    )
    return figures


if __name__ == "__main__":
    run()
