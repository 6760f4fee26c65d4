"""Shared pieces of the benchmarks: a trained data dir, a served app, a load generator, memory readings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
TRAINING_DATA = ROOT / "training_data"
HOLDOUT = ROOT / "bench" / "holdout" / "tickets.jsonl"
console = Console(highlight=False, width=150)


def free_port() -> int:
    """An unused TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def trained_data_dir() -> Iterator[Path]:
    """A temporary data dir with the default model trained and active."""
    from service.settings import Settings
    from service.trainer import train_version

    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        train_version(Settings(data_dir=folder, training_data=TRAINING_DATA), activate=True, note="bench")
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Server:
    """A ``ticket-router serve`` process on loopback."""

    process: subprocess.Popen[bytes]
    port: int
    started_in: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes, in MB."""
        parent = psutil.Process(self.process.pid)
        processes = [parent, *parent.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes) / 1e6

    def worker_rss_mb(self) -> list[float]:
        """Resident memory of each process that serves requests: the workers, or the server itself."""
        parent = psutil.Process(self.process.pid)
        workers = [c for c in parent.children(recursive=True) if "resource_tracker" not in " ".join(c.cmdline())]
        return [p.memory_info().rss / 1e6 for p in (workers or [parent])]


@contextlib.contextmanager
def serve(
    data_dir: Path,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    factory: str | None = None,
    server: str = "granian",
) -> Iterator[Server]:
    """Start ``ticket-router serve`` (or ``server`` on the app ``factory``, same settings); wait for /readyz."""
    port = free_port()
    env = {
        **os.environ,
        "TICKET_ROUTER_DATA_DIR": str(data_dir),
        "TICKET_ROUTER_TRAINING_DATA": str(TRAINING_DATA),
        "TICKET_ROUTER_LOG_LEVEL": "warning",
        "TICKET_ROUTER_RATE_LIMIT": "off",  # one loopback client measures throughput, not the limiter
        "TICKET_ROUTER_AUTH_FAILURE_LIMIT": "off",
        "TICKET_ROUTER_PORT": str(port),
        "TICKET_ROUTER_WORKERS": str(workers),
        **(extra_env or {}),
    }
    if factory is None:
        command = [str(Path(sys.executable).parent / "ticket-router"), "serve", "--port", str(port)]
        command += ["--workers", str(workers)]
    else:
        command = [sys.executable, "-m", "bench.serve_app", server, factory]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the server did not become ready")
            time.sleep(0.02)
        yield Server(process, port, time.perf_counter() - started)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class LoadResult:
    """What a load run measured."""

    requests: int
    errors: int
    seconds: float
    latencies_ms: np.ndarray

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")


def http_request(
    method: str, path: str, body: bytes = b"", content_type: str = "application/json", headers: str = ""
) -> bytes:
    """One raw HTTP/1.1 keep-alive request (``headers``: extra header lines, each ending in CRLF)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n{headers}"
    if body or method == "POST":
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    port: int, requests: list[bytes], concurrency: int, duration: float, rate: float | None, max_requests: int
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    count = 0
    stop_at = time.perf_counter() + duration
    interval = concurrency / rate if rate else 0.0

    async def worker(index: int) -> None:
        nonlocal errors, count
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        next_at = time.perf_counter() + (interval * index / concurrency if interval else 0.0)
        i = index
        try:
            while time.perf_counter() < stop_at and count < max_requests:
                if interval:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                payload = requests[i % len(requests)]
                i += concurrency
                sent = time.perf_counter()
                writer.write(payload)
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    errors += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                latencies.append((time.perf_counter() - sent) * 1000)
                count += 1
                if status >= 400:
                    errors += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - began
    return LoadResult(count, errors, elapsed, np.asarray(latencies))


def load(
    port: int,
    requests: list[bytes],
    concurrency: int = 16,
    duration: float = 5.0,
    rate: float | None = None,
    max_requests: int = 2_000_000,
) -> LoadResult:
    """Closed-loop load (or paced at ``rate`` requests/s) on loopback, bounded in time and count."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvicorn[standard] brings uvloop on Linux
        pass
    return asyncio.run(_load(port, requests, concurrency, duration, rate, max_requests))


def table(title: str, columns: list[str], rows: list[list[str]]) -> Table:
    """A result table; the first column is left-aligned, the rest right-aligned."""
    result = Table(title=title)
    for i, column in enumerate(columns):
        result.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        result.add_row(*row)
    return result


@dataclass
class IdleProbe:
    """What other clients saw while ``connections`` slow connections were open."""

    connections: int
    opened: int
    statuses: dict[int | str, int]
    latencies_ms: np.ndarray
    closed_by_server: int
    seconds: float

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms.size else float("nan")


async def _idle_probe(port: int, connections: int, seconds: float, clients: int, headers: str) -> IdleProbe:
    """Open slow connections (a request line, then one header every 2 s), classify meanwhile from others."""
    closed = 0
    opened = 0
    stop = time.monotonic() + seconds

    async def slow() -> None:
        nonlocal closed, opened
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return
        opened += 1
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        try:
            while time.monotonic() < stop:
                writer.write(b"X-Slow: 1\r\n")
                await writer.drain()
                try:
                    if not await asyncio.wait_for(reader.read(1024), 2.0):
                        closed += 1
                        return
                except TimeoutError:
                    continue
        except (ConnectionError, OSError):
            closed += 1
        finally:
            writer.close()

    statuses: dict[int | str, int] = {}
    latencies: list[float] = []
    body = b'{"title": "p99 latency above 2s on checkout", "body": "Grafana shows 503s"}'
    request = http_request("POST", "/v1/classify", body, headers=headers)

    async def client() -> None:
        await asyncio.sleep(1.0)  # let the slow connections pile up first
        reader = writer = None
        while time.monotonic() < stop - 0.5:
            sent = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(request)
                status: int | str = await asyncio.wait_for(_read_response(reader), 10)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                status, writer = exc.__class__.__name__, None
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
            await asyncio.sleep(0.02)
        if writer is not None:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(slow() for _ in range(connections)), *(client() for _ in range(clients)))
    return IdleProbe(connections, opened, statuses, np.asarray(latencies), closed, time.perf_counter() - began)


def idle_probe(port: int, connections: int, seconds: float = 14.0, clients: int = 4, headers: str = "") -> IdleProbe:
    """``connections`` connections that never finish their headers, and what classify clients see meanwhile."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < connections + 256:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, connections + 1024), hard))
    return asyncio.run(_idle_probe(port, connections, seconds, clients, headers))
