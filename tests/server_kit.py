"""Real ``ticket-router serve`` processes on loopback ports, for tests that need real HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

from tests.conftest import make_training_data


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_env(base: Path, **environment: str) -> dict[str, str]:
    """The environment of a server over a new data dir under ``base`` (it trains on start)."""
    return {
        **os.environ,
        "TICKET_ROUTER_DATA_DIR": str(base / "var"),
        "TICKET_ROUTER_TRAINING_DATA": str(make_training_data(base / "training_data")),
        "TICKET_ROUTER_RATE_LIMIT": "off",
        "TICKET_ROUTER_AUTH_FAILURE_LIMIT": "off",
        "TICKET_ROUTER_LOG_LEVEL": "warning",
        **environment,
    }


def start_server(
    env: dict[str, str], port: int, *args: str, output: int | IO[bytes] | None = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """Start ``ticket-router serve --port PORT ARGS`` and return once /readyz answers 200."""
    executable = shutil.which("ticket-router", path=str(Path(sys.executable).parent))
    assert executable, "the console script is installed"
    process = subprocess.Popen(
        [executable, "serve", "--port", str(port), *args],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if output is subprocess.PIPE else output,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait()
    raise AssertionError(f"the server on port {port} did not become ready (exit code {process.returncode})")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Terminate gracefully, as a process manager would."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_server(env: dict[str, str], *args: str) -> Iterator[str]:
    """A server for the block; yields its base URL."""
    port = free_port()
    process = start_server(env, port, *args)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(process)
