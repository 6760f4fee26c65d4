"""Accuracy and calibration: cross-validation, the held-out set, an unseen organisation, baselines."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bench.common import HOLDOUT, ROOT, TRAINING_DATA, console, table
from bench.fetch_public import read_labels, read_texts
from model.dataset import LabelledTicket, load_examples, load_training_data
from model.evaluation import Metrics, compute_metrics, evaluate_classifier
from model.inference import Classifier
from model.taxonomy import Taxonomy
from model.text import compose
from model.training import train

ORG_SIM = ROOT / "bench" / "org_sim" / "tickets.jsonl"


def keyword_baseline(taxonomy: Taxonomy, tickets: Sequence[LabelledTicket]) -> Metrics:
    """A hand-written keyword list: each team's `terms` from teams.toml, counted in the text."""
    patterns = [[re.compile(r"\b" + re.escape(term.lower()) + r"\b") for term in team.terms] for team in taxonomy.teams]
    rows = []
    for ticket in tickets:
        text = compose(ticket.title, ticket.body).lower()
        hits = np.array([sum(len(p.findall(text)) for p in team) for team in patterns], dtype=float)
        rows.append(hits / hits.sum() if hits.sum() else np.full(len(patterns), 1 / len(patterns)))
    y = np.array([taxonomy.ids.index(t.team) for t in tickets])
    return compute_metrics(taxonomy.ids, y, np.array(rows))


def _row(name: str, m: Metrics, threshold: float | None = None) -> list[str]:
    routed = "-"
    if threshold is not None:
        step = min(m.thresholds, key=lambda r: abs(r.threshold - threshold))
        precision = "-" if step.precision is None else f"{step.precision:.3f}"
        routed = f"{step.routed:.0%} at {precision}"
    return [name, str(m.n), f"{m.accuracy:.3f}", f"{m.macro_f1:.3f}", f"{m.ece:.3f}", routed]


def public_issues() -> list[LabelledTicket]:
    """Real public issues labelled by us, when their texts have been fetched (see bench/public_issues)."""
    texts = read_texts()
    if not texts:
        console.print(
            "[dim]public GitHub issues: texts not fetched; `python -m bench.fetch_public` (needs network)[/dim]"
        )
        return []
    return [
        LabelledTicket(title=texts[label.id].title, body=texts[label.id].body, team=label.team)
        for label in read_labels()
        if label.id in texts and texts[label.id].title.strip()
    ]


def run() -> dict[str, float]:
    data = load_training_data(TRAINING_DATA)
    model = train(data.taxonomy, data.examples)
    classifier = Classifier(model.pipeline, model.teams, model.threshold, "bench")
    cold = train(data.taxonomy, [])
    cold_classifier = Classifier(cold.pipeline, cold.teams, cold.threshold, "cold")
    assert model.report.cv is not None
    rows = [_row(f"{model.report.folds}-fold cross-validation", model.report.cv, model.threshold)]
    figures = {"cv_macro_f1": model.report.cv.macro_f1, "cv_ece": model.report.cv.ece, "threshold": model.threshold}

    def measure(c: Classifier, tickets: Sequence[LabelledTicket]) -> Metrics:
        return evaluate_classifier(c.proba_many, c.teams, [(t.title, t.body, t.team) for t in tickets])

    sets = [
        ("held-out set", load_examples([HOLDOUT], data.taxonomy) if HOLDOUT.exists() else [], "holdout"),
        ("unseen organisation", load_examples([ORG_SIM], data.taxonomy) if ORG_SIM.exists() else [], "org"),
        ("public GitHub issues", public_issues(), "public"),
    ]
    router: dict[str, Metrics] = {}  # the router's metrics per set, for the per-team tables
    for label, tickets, key in sets:
        if not tickets:
            continue
        metrics = router[label] = measure(classifier, tickets)
        figures[f"{key}_macro_f1"] = metrics.macro_f1
        figures[f"{key}_ece"] = metrics.ece
        rows.append(_row(f"{label}: router", metrics, model.threshold))
        cold_metrics = measure(cold_classifier, tickets)
        figures[f"{key}_cold_macro_f1"] = cold_metrics.macro_f1
        rows.append(_row(f"{label}: cold start (descriptions only)", cold_metrics))
        keywords = keyword_baseline(data.taxonomy, tickets)
        figures[f"{key}_keywords_macro_f1"] = keywords.macro_f1
        rows.append(_row(f"{label}: keyword list (teams.toml terms)", keywords))
    console.print(
        table(
            f"Accuracy ({len(data.examples)} training examples; abstain threshold {model.threshold:.2f})",
            ["set / model", "tickets", "accuracy", "macro-F1", "ECE", "routed at precision"],
            rows,
        )
    )
    for label, metrics in router.items():
        console.print(
            table(
                f"{label[0].upper()}{label[1:]} per team (router)",
                ["team", "precision", "recall", "F1", "support"],
                [
                    [team, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support)]
                    for team, s in metrics.per_team.items()
                ],
            )
        )
    return figures


if __name__ == "__main__":
    run()
