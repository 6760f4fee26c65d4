"""Backlog labelling: ``ticket-router label`` rows/s and peak memory, and the NDJSON endpoint's throughput.

The backlog is made of the training and held-out tickets, repeated with fresh ids. Speed is
compared with the bare scikit-learn pipeline's ``predict_proba`` on the same texts, in one
process, already in memory (no reading, no writing): the label command has to read, decide
with explanations, and write, and still keep up with it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import h11
import msgspec
import psutil

from bench.common import HOLDOUT, TRAINING_DATA, console, serve, table, trained_data_dir
from model.dataset import example_files, load_examples
from model.registry import Registry
from model.text import compose

SIZES = (100_000, 1_000_000)


def _tickets() -> list[tuple[str, str]]:
    examples = load_examples(example_files(TRAINING_DATA / "examples"), None)
    if HOLDOUT.exists():
        examples += load_examples([HOLDOUT], None)
    return [(e.title, e.body) for e in examples]


def write_backlog(path: Path, rows: int, tickets: list[tuple[str, str]]) -> None:
    """A JSONL backlog of ``rows`` tickets with ids, written in chunks."""
    encoder = msgspec.json.Encoder()
    with path.open("wb") as out:
        chunk = bytearray()
        for n in range(rows):
            title, body = tickets[n % len(tickets)]
            chunk += encoder.encode({"id": f"T-{n}", "title": title, "body": body})
            chunk += b"\n"
            if len(chunk) > 1 << 20:
                out.write(chunk)
                chunk.clear()
        out.write(chunk)


class PeakRss:
    """Samples the resident memory of a process and its children every 20 ms; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._root = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                processes = [self._root, *self._root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in processes))
            except psutil.Error:
                pass
            self._stop.wait(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def label(data_dir: Path, source: Path, jobs: int) -> dict[str, float]:
    """Run the label command as a user would; its rows/s (from --report) and the peak RSS of its processes."""
    report = source.with_suffix(f".report-{jobs}.json")
    output = source.with_suffix(f".out-{jobs}.jsonl")
    command = [str(Path(sys.executable).parent / "ticket-router"), "label", str(source), "-o", str(output)]
    command += ["--jobs", str(jobs), "--quiet", "--report", str(report)]
    env = {**os.environ, "TICKET_ROUTER_DATA_DIR": str(data_dir), "TICKET_ROUTER_TRAINING_DATA": str(TRAINING_DATA)}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    sampler = PeakRss(process.pid)
    code = process.wait()
    peak = sampler.stop()
    wall = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"label exited with {code}")
    summary = json.loads(report.read_text())
    output.unlink()
    return {"rows": summary["rows"], "rows_per_s": summary["rows_per_second"], "wall_s": wall, "peak_mb": peak / 1e6}


def sklearn_rate(data_dir: Path, tickets: list[tuple[str, str]], rows: int) -> float:
    """Rows/s of the bare pipeline's predict_proba on the same texts, in memory, one process."""
    pipeline = Registry(data_dir / "models").load_active().pipeline
    texts = [compose(*tickets[n % len(tickets)]) for n in range(rows)]
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        for start in range(0, rows, 10_000):
            pipeline.predict_proba(texts[start : start + 10_000])
        best = min(best, time.perf_counter() - t0)
    return rows / best


def ndjson_rate(data_dir: Path, source: Path, rows: int) -> dict[str, float]:
    """Stream the backlog's first ``rows`` lines to /v1/classify/batch as NDJSON; decisions/s end to end.

    The client sends and reads at the same time (as curl does): the answer streams back while
    the request is still going out, so neither side ever holds the whole stream.
    """
    with serve(data_dir) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        head = (
            "POST /v1/classify/batch HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        counts = {"lines": 0, "errors": 0, "status": 0}

        def read() -> None:
            # h11 parses the answer; this connection object is used for reading only.
            parser = h11.Connection(our_role=h11.CLIENT)
            parser.send(
                h11.Request(method="POST", target="/", headers=[("Host", "x"), ("Transfer-Encoding", "chunked")])
            )
            tail = b""
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(sock.recv(1 << 16))
                elif isinstance(event, h11.Response):
                    counts["status"] = event.status_code
                elif isinstance(event, h11.Data):
                    *lines, tail = (tail + bytes(event.data)).split(b"\n")
                    counts["lines"] += len(lines)
                    counts["errors"] += sum(1 for line in lines if line.startswith(b'{"line"'))
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return

        started = time.perf_counter()
        reader = threading.Thread(target=read)
        reader.start()
        sock.sendall(head.encode())
        with source.open("rb") as handle:
            sent = 0
            while sent < rows:
                chunk = b"".join(line for _, line in zip(range(min(500, rows - sent)), handle, strict=False))
                sent += chunk.count(b"\n")
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        sock.sendall(b"0\r\n\r\n")
        reader.join()
        seconds = time.perf_counter() - started
        sock.close()
        rss = server.rss_mb()
    if counts["status"] != 200 or counts["lines"] != rows:
        raise RuntimeError(f"sent {rows} lines, got status {counts['status']} and {counts['lines']} lines back")
    return {"rows": rows, "rows_per_s": rows / seconds, "errors": counts["errors"], "server_rss_mb": rss}


def run() -> dict[str, float]:
    tickets = _tickets()
    figures: dict[str, float] = {}
    with trained_data_dir() as data_dir, tempfile.TemporaryDirectory(prefix="bench-batch-") as scratch:
        backlogs = {}
        for size in SIZES:
            backlogs[size] = Path(scratch) / f"backlog-{size}.jsonl"
            write_backlog(backlogs[size], size, tickets)
        baseline = sklearn_rate(data_dir, tickets, SIZES[0])
        one = label(data_dir, backlogs[SIZES[0]], jobs=1)
        two = label(data_dir, backlogs[SIZES[0]], jobs=2)
        big = label(data_dir, backlogs[SIZES[1]], jobs=1)
        stream = ndjson_rate(data_dir, backlogs[SIZES[0]], 100_000)
    figures.update(
        {
            "sklearn_rows_per_s": baseline,
            "label_1job_rows_per_s": one["rows_per_s"],
            "label_2jobs_rows_per_s": two["rows_per_s"],
            "label_1job_ratio": one["rows_per_s"] / baseline,
            "label_2jobs_ratio": two["rows_per_s"] / baseline,
            "peak_mb_100k": one["peak_mb"],
            "peak_mb_1m": big["peak_mb"],
            "peak_growth": big["peak_mb"] / one["peak_mb"] - 1,
            "label_1m_rows_per_s": big["rows_per_s"],
            "ndjson_rows_per_s": stream["rows_per_s"],
            "ndjson_errors": stream["errors"],
        }
    )
    console.print(
        table(
            f"Backlog labelling ({SIZES[0]:,} tickets unless noted; JSONL in, JSONL out)",
            ["run", "rows/s", "vs predict_proba", "wall s", "peak RSS MB", "goal"],
            [
                ["pipeline.predict_proba, in memory", f"{baseline:,.0f}", "1.00", "", "", ""],
                [
                    "ticket-router label --jobs 1",
                    f"{one['rows_per_s']:,.0f}",
                    f"{figures['label_1job_ratio']:.2f}",
                    f"{one['wall_s']:.1f}",
                    f"{one['peak_mb']:.0f}",
                    ">= 0.80 of predict_proba",
                ],
                [
                    "ticket-router label --jobs 2",
                    f"{two['rows_per_s']:,.0f}",
                    f"{figures['label_2jobs_ratio']:.2f}",
                    f"{two['wall_s']:.1f}",
                    f"{two['peak_mb']:.0f}",
                    "",
                ],
                [
                    f"ticket-router label --jobs 1, {SIZES[1]:,} rows",
                    f"{big['rows_per_s']:,.0f}",
                    f"{big['rows_per_s'] / baseline:.2f}",
                    f"{big['wall_s']:.1f}",
                    f"{big['peak_mb']:.0f} ({figures['peak_growth']:+.1%})",
                    "peak within 20% of 100k",
                ],
                [
                    "POST /v1/classify/batch NDJSON stream (1 worker)",
                    f"{stream['rows_per_s']:,.0f}",
                    f"{stream['rows_per_s'] / baseline:.2f}",
                    "",
                    f"{stream['server_rss_mb']:.0f} (server)",
                    f"{stream['errors']:.0f} error lines",
                ],
            ],
        )
    )
    return figures


if __name__ == "__main__":
    run()
