"""A real ``ticket-router serve`` process on a loopback port, for tests that need real HTTP."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.conftest import make_training_data
from tests.test_cli import _free_port


@contextlib.contextmanager
def running_server(base: Path, **environment: str) -> Iterator[str]:
    """Serve a fresh data dir under ``base`` (trained on start) and yield its URL once ready."""
    env = {
        **os.environ,
        "TICKET_ROUTER_DATA_DIR": str(base / "var"),
        "TICKET_ROUTER_TRAINING_DATA": str(make_training_data(base / "training_data")),
        "TICKET_ROUTER_RATE_LIMIT": "off",
        "TICKET_ROUTER_LOG_LEVEL": "warning",
        **environment,
    }
    port = _free_port()
    executable = shutil.which("ticket-router", path=str(Path(sys.executable).parent))
    assert executable
    process = subprocess.Popen(
        [executable, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            raise AssertionError(f"the server on {url} was not ready within 60 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
