"""Learning from corrections: accuracy on an unseen organisation as its corrections arrive."""

from __future__ import annotations

import random
from collections import defaultdict

import numpy as np

from bench.common import ROOT, TRAINING_DATA, console, table
from model.dataset import LabelledTicket, load_examples, load_training_data
from model.evaluation import compute_metrics
from model.inference import Classifier
from model.training import TrainingParams, fit_pipeline

ORG_SIM = ROOT / "bench" / "org_sim" / "tickets.jsonl"
SIZES = (0, 25, 50, 100, 200)
WEIGHTS = (1.0, 3.0)
SEEDS = (0, 1, 2)


def _split(tickets: list[LabelledTicket], seed: int) -> tuple[list[LabelledTicket], list[LabelledTicket]]:
    """A stratified split: 60% a pool of corrections, shuffled with teams interleaved; 40% the test set."""
    rng = random.Random(seed)
    by_team: dict[str, list[LabelledTicket]] = defaultdict(list)
    for ticket in tickets:
        by_team[ticket.team].append(ticket)
    pools, test = [], []
    for team in sorted(by_team):
        items = by_team[team][:]
        rng.shuffle(items)
        cut = int(len(items) * 0.6)
        pools.append(items[:cut])
        test += items[cut:]
    # Interleave teams, so the first n corrections are balanced as an organisation's would roughly be.
    pool = [ticket for group in zip(*pools, strict=False) for ticket in group]
    return pool, test


def run() -> dict[str, float]:
    data = load_training_data(TRAINING_DATA)
    org = load_examples([ORG_SIM], data.taxonomy)
    params = TrainingParams()
    teams = data.taxonomy.ids
    scores: dict[tuple[float, int], list[float]] = defaultdict(list)
    for seed in SEEDS:
        pool, test = _split(org, seed)
        y = np.array([teams.index(t.team) for t in test])
        for weight in WEIGHTS:
            for size in SIZES:
                corrections = [
                    LabelledTicket(t.title, t.body, t.team, source="correction", weight=weight) for t in pool[:size]
                ]
                pipeline = fit_pipeline(data.taxonomy, [*data.examples, *corrections], params)
                classifier = Classifier(pipeline, teams, 0.0, "bench")
                proba = classifier.proba_many([(t.title, t.body) for t in test])
                scores[(weight, size)].append(compute_metrics(teams, y, proba).macro_f1)
    figures = {f"f1_w{weight:g}_{size}": float(np.mean(scores[(weight, size)])) for weight, size in scores}
    rows = [
        [f"{size}"] + [f"{np.mean(scores[(w, size)]):.3f} ± {np.std(scores[(w, size)]):.3f}" for w in WEIGHTS]
        for size in SIZES
    ]
    console.print(
        table(
            f"Macro-F1 on an unseen organisation's held-out tickets ({len(org)} tickets with in-house jargon,"
            f" 40% held out) as its corrections join {len(data.examples)} training examples; mean ± sd over"
            f" {len(SEEDS)} splits",
            ["corrections", *[f"correction weight {w:g}" for w in WEIGHTS]],
            rows,
        )
    )
    return figures


if __name__ == "__main__":
    run()
