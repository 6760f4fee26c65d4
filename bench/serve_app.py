"""Serve an app factory with one of the two HTTP servers the benchmarks compare.

``python -m bench.serve_app granian|uvicorn TARGET`` with the ``TICKET_ROUTER_*`` environment:
granian exactly as ``ticket-router serve`` runs it (``service/server.py``); uvicorn as the
service ran it before (httptools, uvloop, a 5 s keep-alive timeout, ``limit_concurrency``).
"""

from __future__ import annotations

import sys

from service.server import run_server
from service.settings import Settings


def main(server: str, target: str) -> None:
    settings = Settings.from_env()
    if server == "granian":
        run_server(settings, target)
        return
    import uvicorn

    uvicorn.run(
        target,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
        http="httptools",
        loop="uvloop",
        limit_concurrency=settings.max_concurrency,
        timeout_keep_alive=5,
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
