"""Console pages rendered server-side with 100,000 decisions in the audit trail (goal: each under 100 ms).

The store is filled directly (100,000 decisions, a tenth of them waiting in the triage queue,
corrections, deliveries and failed write-backs), then every page is requested in-process
through the real app, so the time is the server's alone: routing, queries, templates.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
from litestar.testing import TestClient

from bench.common import TRAINING_DATA, console, table, trained_data_dir
from service.app import create_app
from service.settings import Settings
from service.store import (
    CorrectionRecord,
    DecisionRecord,
    DeliveryRecord,
    Store,
    TriageRecord,
    WritebackRecord,
    new_id,
)

DECISIONS = 100_000
TRIAGE_SHARE = 10  # one decision in ten waits for a person
CORRECTIONS = 2_000
DELIVERIES = 5_000
FAILED = 200
ROUNDS = 30
TEAMS = ["Development", "DevOps", "SRE", "Platform"]


def fill(store: Store, version: str) -> None:
    """The audit trail and the tables the console reads, at the sizes above."""
    rng = random.Random(7)
    now = time.time() - DECISIONS
    chunk: list[DecisionRecord] = []
    triage: list[TriageRecord] = []
    for i in range(DECISIONS):
        scores = dict(zip(TEAMS, np.random.default_rng(i).dirichlet([1, 1, 1, 1]).tolist(), strict=True))
        team = max(scores, key=lambda t: scores[t])
        ref = f"bench:acme/shop#{i}" if i % 3 == 0 else None
        record = DecisionRecord(
            id=new_id(),
            created_at=now + i,
            source="api" if ref is None else "github",
            text_sha256=f"{i:064x}",
            team=team,
            confidence=scores[team],
            abstained=scores[team] < 0.5,
            model_version=version,
            scores=scores,
            ticket_ref=ref,
        )
        chunk.append(record)
        if i % TRIAGE_SHARE == 0:
            title = f"Ticket {i}: checkout latency above 2s since the deploy"
            body = "Grafana shows 503s from the payments service. " * rng.randint(1, 20)
            triage.append(TriageRecord(record.id, record.created_at, "abstained", title, body, ticket_ref=ref))
        if len(chunk) == 5_000:
            store.audit.add(chunk, triage)
            chunk, triage = [], []
    store.audit.add(chunk, triage)
    for i in range(CORRECTIONS):
        text = f"Correction {i}: rotate the Vault unseal keys"
        store.corrections.add(
            CorrectionRecord(
                new_id(), now + i, "console", rng.choice(TEAMS), text, "", f"{i:064x}", actor="ana", ticket_ref=None
            )
        )
    for i in range(DELIVERIES):
        store.outbox.record_delivery(
            DeliveryRecord("github", f"d{i}", now + i, "issues", "classified", "opened", f"github:acme/shop#{i}", "ok")
        )
    for i in range(FAILED):
        row = WritebackRecord(
            new_id(), now, now, "github", f"github:acme/shop#{i}", "[]", "pending", label="team:sre", attempts=1
        )
        store.outbox.record_delivery(
            DeliveryRecord("github", f"w{i}", now, "issues", "classified", "opened", row.ticket_ref), row
        )
        store.outbox.finish_writeback(row.id, "failed", 1, "POST ... answered 403")


def run(rounds: int = ROUNDS) -> dict[str, float]:
    figures: dict[str, float] = {}
    with trained_data_dir() as folder:
        settings = Settings(data_dir=Path(folder), training_data=TRAINING_DATA, rate_limit="off")
        with Store.for_settings(settings) as store:
            version = (Path(folder) / "models" / "ACTIVE").read_text().strip()
            started = time.perf_counter()
            fill(store, version)
            console.print(f"[dim]filled the store in {time.perf_counter() - started:.0f} s[/dim]")
            open_rows = store.triage.open_count()
        pages = ["/console/", "/console/queue", "/console/models", "/console/deliveries", "/console/corrections"]
        with TestClient(app=create_app(settings)) as client:
            pages.append("/console/queue?before=" + _cursor(client, 40))
            pages.append(f"/console/models/{version}/reliability.png")
            rows = []
            for path in pages:
                for _ in range(3):
                    assert client.get(path).status_code == 200, path
                times = []
                for _ in range(rounds):
                    t0 = time.perf_counter()
                    answer = client.get(path)
                    times.append((time.perf_counter() - t0) * 1000)
                    assert answer.status_code == 200, path
                median, p95 = float(np.median(times)), float(np.percentile(times, 95))
                figures[f"{path}_median_ms"], figures[f"{path}_p95_ms"] = median, p95
                verdict = "yes" if p95 < 100 else "NO"
                rows.append([path, f"{median:.1f}", f"{p95:.1f}", verdict])
    console.print(
        table(
            f"Console pages, server-side, {DECISIONS:,} decisions ({open_rows:,} in the triage queue),"
            f" {CORRECTIONS:,} corrections, {DELIVERIES:,} deliveries; {rounds} requests each",
            ["page", "median ms", "p95 ms", "p95 under 100 ms"],
            rows,
        )
    )
    return figures


def _cursor(client: TestClient, pages: int) -> str:
    """The ``before`` cursor ``pages`` pages deep into the queue."""
    path = "/console/queue"
    cursor = ""
    for _ in range(pages):
        text = client.get(path).text
        marker = 'href="/console/queue?before='
        at = text.find(marker)
        if at < 0:
            break
        cursor = text[at + len(marker) : text.index('"', at + len(marker))]
        path = f"/console/queue?before={cursor}"
    return cursor


if __name__ == "__main__":
    run()
