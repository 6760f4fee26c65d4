"""The promotion gate: a candidate replaces the active model only if it is not worse.

The candidate and the active model's recipe (its parameters, its taxonomy, and only the
examples it was trained on) are each trained on every fold's training part and scored on the
same test part of the current data, so the comparison measures what changed (data, taxonomy or
parameters) and not the luck of a split. Both are calibrated the same way before scoring. A
candidate whose calibration error exceeds the bound is refused too, once cross-validation
covers enough tickets for that error to mean something (``MIN_TICKETS_FOR_ECE``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import msgspec
import numpy as np
from scipy.special import softmax

from model.dataset import LabelledTicket
from model.evaluation import compute_metrics
from model.taxonomy import Taxonomy
from model.text import fingerprint
from model.training import (
    TrainingParams,
    calibrate,
    decision_logits,
    fit_pipeline,
    fit_temperature,
    fold_indices,
    logits_and_evidence,
)

__all__ = ["MIN_TICKETS_FOR_ECE", "ActiveRecipe", "GateResult", "example_key", "judge"]

# Ten-bin ECE on fewer tickets than this is mostly noise.
MIN_TICKETS_FOR_ECE = 100


class GateResult(msgspec.Struct, frozen=True):
    """The gate's verdict with the figures it compared."""

    passed: bool
    reason: str
    candidate_macro_f1: float | None
    active_macro_f1: float | None
    candidate_ece: float | None
    max_ece: float
    tickets: int = 0


class ActiveRecipe(msgspec.Struct, frozen=True):
    """How the active model was made: what the candidate is compared with."""

    taxonomy: Taxonomy
    params: TrainingParams
    example_keys: frozenset[str] | None  # None: unknown, every current example counts


def example_key(ticket: LabelledTicket) -> str:
    """A short key of an example's text and team, stored in manifests to know what a model saw."""
    return f"{fingerprint(ticket.text)[:16]}:{ticket.team}"


def judge(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    candidate: TrainingParams,
    active: ActiveRecipe | None,
    max_ece: float,
) -> GateResult:
    """Cross-validate the candidate and the active recipe on the same folds and compare."""
    if active is None:
        return GateResult(True, "no active model", None, None, None, max_ece)
    counts = Counter(t.team for t in examples)
    eligible = [t for t in examples if counts[t.team] >= 2]
    always = [t for t in examples if counts[t.team] < 2]
    sizes = [c for c in counts.values() if c >= 2]
    if len(sizes) < 2:
        return GateResult(True, "too few examples to cross-validate; nothing to compare", None, None, None, max_ece)
    teams = taxonomy.ids
    active_columns = [active.taxonomy.ids.index(t) if t in active.taxonomy.ids else -1 for t in teams]
    y = np.asarray([teams.index(t.team) for t in eligible], dtype=np.int64)
    ours = np.zeros((len(eligible), len(teams)))
    evidence = np.zeros(len(eligible), dtype=np.int64)
    theirs = np.full((len(eligible), len(teams)), -1e9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for train_idx, test_idx in fold_indices(eligible, y, candidate, min(candidate.folds, min(sizes))):
            train_set = [eligible[i] for i in train_idx] + always
            texts = [eligible[i].model_text for i in test_idx]
            fitted = fit_pipeline(taxonomy, train_set, candidate)
            ours[test_idx], evidence[test_idx] = logits_and_evidence(fitted, texts, len(teams))
            seen = [
                t
                for t in train_set
                if t.team in active.taxonomy.ids
                and (active.example_keys is None or example_key(t) in active.example_keys)
            ]
            baseline = fit_pipeline(active.taxonomy, seen, active.params)
            logits = decision_logits(baseline, texts, len(active.taxonomy.ids))
            for column, source in enumerate(active_columns):
                if source >= 0:
                    theirs[test_idx, column] = logits[:, source]
    chosen = np.array([not candidate.calibrate_on or t.source in candidate.calibrate_on for t in eligible])
    if chosen.sum() < len(teams) * 10:
        chosen[:] = True
    mine = compute_metrics(teams, y, calibrate(ours, evidence, y, chosen, candidate)[1])
    base = compute_metrics(teams, y, softmax(theirs / fit_temperature(theirs, y), axis=1))
    f1, baseline_f1, ece, n = mine.macro_f1, base.macro_f1, mine.ece, mine.n
    if f1 + 1e-9 < baseline_f1:
        reason = f"macro-F1 {f1:.4f} is worse than the active model's {baseline_f1:.4f} on the same folds"
        return GateResult(False, reason, f1, baseline_f1, ece, max_ece, n)
    if n >= MIN_TICKETS_FOR_ECE and ece > max_ece:
        reason = f"calibration error {ece:.4f} is above the bound {max_ece:.4f}"
        return GateResult(False, reason, f1, baseline_f1, ece, max_ece, n)
    judged = f"ECE {ece:.4f} <= {max_ece:.4f}" if n >= MIN_TICKETS_FOR_ECE else f"ECE not judged on {n} tickets"
    return GateResult(
        True,
        f"macro-F1 {f1:.4f} >= active {baseline_f1:.4f} on the same folds; {judged}",
        f1,
        baseline_f1,
        ece,
        max_ece,
        n,
    )
