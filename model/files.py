"""Files that appear whole or not at all: write to a temporary name, fsync, rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

__all__ = ["atomic_output", "atomic_write_text"]


@contextmanager
def atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``path`` only when the block finishes; an interrupted run leaves nothing there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically: readers see the old or the new, never a part."""
    with atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))
