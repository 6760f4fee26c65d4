"""The process a training job runs in: ``python -m service.training_worker PARENT_PID``.

It reads the pickled ``(settings, options, actor, job_id)`` from standard input, trains (writing
the job's stage and progress to its row), and writes the msgpack-encoded result to standard
output, then exits: one process per job, so no training process outlives its job. It also ends
when its parent (the server worker) dies.
"""

from __future__ import annotations

import logging.config
import pickle
import sys

import msgspec

from service.jobs import run_training
from service.lifeline import die_with_parent
from service.logs import logging_config


def main(argv: list[str]) -> int:
    """Train once as asked on stdin; the result goes to stdout."""
    die_with_parent(int(argv[1]) if len(argv) > 1 and argv[1].isdigit() else None)
    settings, options, actor, job_id = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by our parent
    logging.config.dictConfig(logging_config(settings.log_level))
    result = run_training(settings, options, actor, job_id)
    sys.stdout.buffer.write(msgspec.msgpack.encode(result))
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
