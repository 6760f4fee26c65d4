"""Accuracy and calibration: cross-validation, written sets, real streams (dev and test), baselines.

The real-stream parts (``bench/real_stream``) are reported text alone and with the repository
each ticket was filed in, beside the second labeller's agreement (the ceiling); a reliability
diagram and the routed-precision/coverage curve are written to ``docs/accuracy/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from bench import realstream
from bench.common import HOLDOUT, ROOT, TRAINING_DATA, console, table
from bench.fetch_public import read_labels, read_texts
from model.dataset import LabelledTicket, load_examples, load_training_data
from model.decision import Decision
from model.evaluation import Metrics, compute_metrics, evaluate_classifier
from model.inference import Classifier
from model.taxonomy import Taxonomy
from model.text import compose
from model.training import train

ORG_SIM = ROOT / "bench" / "org_sim" / "tickets.jsonl"
PICTURES = ROOT / "docs" / "accuracy"


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
    classifier = model.classifier("bench")
    cold = train(data.taxonomy, [])
    cold_classifier = cold.classifier("cold")
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
    figures.update(real_streams(data.taxonomy, classifier, cold_classifier))
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


def _stream_row(name: str, r: realstream.StreamReport) -> list[str]:
    m = r.metrics
    routed = "-" if r.routed_precision is None else f"{r.routed_share:.0%} at {r.routed_precision:.3f}"
    confident = "-" if r.confident_right is None else f"{r.confident} at {r.confident_right:.0%}"
    abstain = "-" if r.null_abstained is None else f"{r.null_abstained:.0%}"
    return [
        name,
        str(m.n),
        f"{m.accuracy:.3f}",
        f"{m.macro_f1:.3f}",
        f"{r.team_or_alt:.3f}",
        f"{m.ece:.3f}",
        f"{r.ece_floor:.3f}",
        routed,
        confident,
        abstain,
    ]


def real_streams(taxonomy: Taxonomy, classifier: Classifier, cold: Classifier) -> dict[str, float]:
    """The real-stream dev and test parts: the router (text, then text with repository), baselines, the ceiling."""
    parts = {split: realstream.load(split) for split in ("dev", "test")}
    if not any(parts.values()):
        console.print(
            "[dim]real stream: texts not fetched; `python -m bench.fetch_public real_stream` (needs network)[/dim]"
        )
        return {}
    figures: dict[str, float] = {}
    rows = []
    curves = {}
    per_team = []
    kinds = []
    repository = {t.item.id: t.item.repo for tickets in parts.values() for t in tickets}

    def placed(items: Sequence[tuple[str | None, str | None, str | None]]) -> list[Decision]:
        return classifier.decide_many([(i, title, body, repository[i or ""]) for i, title, body in items])

    for split, tickets in parts.items():
        if not tickets:
            continue

        text = realstream.evaluate(classifier.decide_many, tickets)
        with_repository = realstream.evaluate(placed, tickets)
        baseline = realstream.evaluate(cold.decide_many, tickets)
        rows += [
            _stream_row(f"real stream {split}: router, text", text),
            _stream_row(f"real stream {split}: router, text + repository", with_repository),
            _stream_row(f"real stream {split}: cold start", baseline),
        ]
        agreement = realstream.agreement(tickets)
        if agreement is not None:
            rows.append(
                [
                    f"real stream {split}: second labeller (ceiling)",
                    str(agreement.compared),
                    f"{agreement.accuracy:.3f}",
                    f"{agreement.macro_f1:.3f}",
                    f"{agreement.team_or_alt:.3f}",
                    "",
                    "",
                    "",
                    "",
                    "",
                ]
            )
            figures[f"stream_{split}_ceiling_macro_f1"] = agreement.macro_f1
        for key, report in (("text", text), ("repo", with_repository)):
            figures[f"stream_{split}_{key}_macro_f1"] = report.metrics.macro_f1
            figures[f"stream_{split}_{key}_ece"] = report.metrics.ece
            figures[f"stream_{split}_{key}_ece_floor"] = report.ece_floor
            figures[f"stream_{split}_{key}_team_or_alt"] = report.team_or_alt
            figures[f"stream_{split}_{key}_routed_share"] = report.routed_share
            figures[f"stream_{split}_{key}_routed_precision"] = report.routed_precision or 0.0
        labelled = [t for t in tickets if t.a.team is not None]
        for name, decide in ((f"{split}, text", classifier.decide_many), (f"{split}, text + repository", placed)):
            decisions = decide([(t.item.id, t.title, t.body) for t in labelled])
            confidence = np.array([d.confidence for d in decisions])
            correct = np.array([d.team == t.a.team for d, t in zip(decisions, labelled, strict=True)])
            curves[name] = (confidence, correct)
        for team, s in text.metrics.per_team.items():
            sent, decided, precision = text.routed_by_team[team]
            routed = f"{sent} of {decided} at {precision:.3f}" if precision is not None else f"0 of {decided}"
            per_team.append(
                [split, team, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support), routed]
            )
        kinds.append(f"{split}: " + ", ".join(f"{kind} {share:.2f}" for kind, share in text.by_kind.items()))
    console.print(
        table(
            "Real streams (labeller A is the reference; tickets without a team only measure abstention)",
            [
                "set / model",
                "tickets",
                "accuracy",
                "macro-F1",
                "team or alt",
                "ECE",
                "ECE if calibrated",
                "routed at precision",
                "conf >= 0.9: right",
                "no-evidence abstained",
            ],
            [row[:10] if len(row) > 10 else row for row in rows],
        )
    )
    for row in rows:
        if len(row) > 10:
            console.print(f"{row[0]}: {row[10]}")
    console.print(
        table(
            "Real streams per team (router, text)",
            ["part", "team", "precision", "recall", "F1", "support", "routed at precision"],
            per_team,
        )
    )
    realstream.plot_reliability(curves, PICTURES / "reliability.png")
    realstream.plot_coverage(curves, PICTURES / "coverage.png")
    console.print(f"wrote {PICTURES / 'reliability.png'} and {PICTURES / 'coverage.png'}")
    return figures


if __name__ == "__main__":
    run()
