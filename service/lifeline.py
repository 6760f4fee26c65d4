"""Child processes that end with their parent: server workers and training processes are never orphaned.

When a process is killed with SIGKILL it cannot stop its children. A server worker left behind
keeps the port (several processes share it) and its training jobs' heartbeats alive; a training
process left behind holds a couple of hundred MB for nothing. On Linux the kernel sends the child
a signal when its parent dies (``PR_SET_PDEATHSIG``); elsewhere a thread watches the parent id.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import threading
import time

__all__ = ["PARENT_VARIABLE", "die_with_parent", "parent_from_environment"]

log = logging.getLogger("ticket_router.lifeline")

# The server's main process puts its pid here for the workers it starts.
PARENT_VARIABLE = "TICKET_ROUTER_SERVER_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None, sig: signal.Signals = signal.SIGTERM) -> None:
    """Receive ``sig`` when the parent process dies; exit at once if it is already gone.

    ``parent`` is the pid the parent had (None: the current parent). The signal's default or
    installed handler decides what happens: SIGTERM lets a server worker stop gracefully.
    """
    expected = os.getppid() if parent is None else parent
    if not _set_death_signal(sig):
        threading.Thread(target=_watch, args=(expected, sig), name="lifeline", daemon=True).start()
    if os.getppid() != expected:  # the parent died before the signal was armed
        os.kill(os.getpid(), sig)


def parent_from_environment() -> int | None:
    """The pid the server's main process left in the environment, if any."""
    value = os.environ.get(PARENT_VARIABLE, "")
    return int(value) if value.isdigit() else None


def _set_death_signal(sig: signal.Signals) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    return False


def _watch(parent: int, sig: signal.Signals) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("parent process %d is gone; stopping", parent)
    os.kill(os.getpid(), sig)
