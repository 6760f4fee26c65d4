"""Running the HTTP server: granian, with the limits that protect the service from its clients.

Why granian (``bench/http.py`` measures it beside uvicorn): it closes a connection whose request
headers are not complete within ``header_timeout_seconds``, and the same timer closes idle
keep-alive connections, so connections that never finish a request cannot pile up. uvicorn has
no header-read timeout, and its concurrency limit counts open sockets, so about a thousand idle
connections per worker made it answer 503 to everyone.

Here granian's own per-worker connection limit (``backpressure``) is set high
(``max_connections``): the limit that matters is ``max_concurrency``, requests in progress,
enforced by the app (``service/limits.py``).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import resource
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service.lifeline import PARENT_VARIABLE
from service.logs import logging_config
from service.settings import Settings

__all__ = ["METRICS_DIR_VARIABLE", "raise_open_files_limit", "run_server"]

log = logging.getLogger("ticket_router.server")

METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
TARGET = "service.asgi:app_from_env"


def run_server(settings: Settings, target: str = TARGET) -> None:
    """Serve ``target`` (an app factory reading the environment) until SIGTERM or SIGINT."""
    from granian.constants import HTTPModes, Interfaces, Loops
    from granian.http import HTTP1Settings
    from granian.log import LogLevels
    from granian.server import Server

    raise_open_files_limit(2 * settings.max_connections + 1024)
    server = Server(
        target,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        factory=True,
        workers=settings.workers,
        loop=Loops.auto,
        http=HTTPModes.http1,  # HTTP/1.1 only: the header timeout below does not bound an idle HTTP/2 connection
        websockets=False,
        backlog=2048,
        backpressure=settings.max_connections,
        http1_settings=HTTP1Settings(header_read_timeout=int(settings.header_timeout_seconds * 1000)),
        log_dictconfig=logging_config(settings.log_level),
        log_level=LogLevels(settings.log_level.lower()),
        respawn_failed_workers=True,
        workers_kill_timeout=30,
    )
    os.environ[PARENT_VARIABLE] = str(os.getpid())
    with _metrics_dir(settings.workers):
        # Imported once here, the workers forked from this process start without importing it again.
        importlib.import_module(target.partition(":")[0])
        server.serve()


@contextlib.contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers, a private directory where prometheus-client adds up their metrics.

    It is this server's own (never the shared data dir: replicas on other machines must not
    mix or delete each other's files) and removed when the server stops.
    """
    if workers < 2:
        yield
        return
    if "prometheus_client" in sys.modules:  # it picks its storage when first imported: too late now
        raise RuntimeError("prometheus_client was imported before its multiprocess directory was set")
    folder = Path(tempfile.mkdtemp(prefix="ticket-router-metrics-"))
    os.environ[METRICS_DIR_VARIABLE] = str(folder)
    try:
        yield
    finally:
        os.environ.pop(METRICS_DIR_VARIABLE, None)
        shutil.rmtree(folder, ignore_errors=True)


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit of open files towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft
