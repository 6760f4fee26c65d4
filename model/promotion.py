"""The promotion gate: a candidate replaces the active model only if it is not worse.

The candidate and the active model's recipe (its parameters, its taxonomy, and only the
examples it was trained on) are each trained on every fold's training part and scored on the
same test part of the current data, so the comparison measures what changed (data, taxonomy or
parameters) and not the luck of a split. Both are calibrated the same way before scoring.

Folds differ from each other, so a small difference is noise: the gate compares the two fold by
fold (a paired comparison) and refuses only a candidate whose mean macro-F1 difference is below
minus a tolerance taken from the spread of the per-fold differences (a one-sided 95% bound,
never more than ``MAX_TOLERANCE``).
Corrections people made are evidence too: a candidate that now decides the corrected tickets as
people said, and breaks none the active model decided right, passes as long as it loses nothing
beyond noise on the other tickets. A candidate whose calibration error exceeds the bound is
refused too, once cross-validation covers enough tickets for that error to mean something
(``MIN_TICKETS_FOR_ECE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import msgspec
import numpy as np
from numpy.typing import NDArray
from scipy.special import softmax
from scipy.stats import t as student_t
from sklearn.pipeline import Pipeline

from model.dataset import LabelledTicket
from model.evaluation import compute_metrics
from model.fitting import Corpus, Progress, run_fits
from model.taxonomy import Taxonomy
from model.text import fingerprint
from model.training import (
    OutOfFold,
    TrainingParams,
    calibrate,
    corpus_for,
    fit_task,
    fit_temperature,
    fold_plan,
    logits_and_evidence,
    out_of_fold,
    prior_documents,
)

__all__ = [
    "CORRECTION_SOURCE",
    "GATE_STAGE",
    "MAX_TOLERANCE",
    "MIN_TICKETS_FOR_ECE",
    "ActiveRecipe",
    "CorrectionCheck",
    "GateResult",
    "check_corrections",
    "example_key",
    "judge",
]

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
    # The paired comparison: the candidate's macro-F1 minus the active recipe's, fold by fold, their
    # mean, and how far below zero that mean may go before it is more than fold noise.
    fold_differences: list[float] = []
    mean_difference: float | None = None
    tolerance: float | None = None
    # The corrected tickets: how many the candidate now decides as people said where the active
    # model did not (fixed), and the reverse (broken).
    corrections_checked: int = 0
    corrections_fixed: int = 0
    corrections_broken: int = 0


class CorrectionCheck(msgspec.Struct, frozen=True):
    """How the candidate and the active model decide the tickets people corrected."""

    checked: int
    fixed: int
    broken: int


class ActiveRecipe(msgspec.Struct, frozen=True):
    """How the active model was made: what the candidate is compared with."""

    taxonomy: Taxonomy
    params: TrainingParams
    example_keys: frozenset[str] | None  # None: unknown, every current example counts


def example_key(ticket: LabelledTicket) -> str:
    """A short key of an example's text and team, stored in manifests to know what a model saw."""
    return f"{fingerprint(ticket.text)[:16]}:{ticket.team}"


GATE_STAGE = "promotion gate"
CORRECTION_SOURCE = "correction:"
CONFIDENCE = 0.95
# However noisy the folds (a few tickets each), a drop of more than this is never called noise.
MAX_TOLERANCE = 0.02


def check_corrections(
    corrected: Sequence[LabelledTicket],
    candidate: Pipeline,
    candidate_teams: Sequence[str],
    active: Pipeline,
    active_teams: Sequence[str],
) -> CorrectionCheck:
    """Which corrected tickets each model decides as people said: fixed and broken by the candidate."""
    if not corrected:
        return CorrectionCheck(0, 0, 0)
    texts = [t.model_text for t in corrected]
    ours = logits_and_evidence(candidate, texts, len(candidate_teams))[0].argmax(axis=1)
    theirs = logits_and_evidence(active, texts, len(active_teams))[0].argmax(axis=1)
    now = np.array([candidate_teams[i] == t.team for i, t in zip(ours, corrected, strict=True)])
    before = np.array([active_teams[i] == t.team for i, t in zip(theirs, corrected, strict=True)])
    return CorrectionCheck(len(corrected), int((now & ~before).sum()), int((before & ~now).sum()))


def _paired(
    teams: Sequence[str],
    y: NDArray[np.int64],
    ours: NDArray[np.float64],
    theirs: NDArray[np.float64],
    fold: NDArray[np.int64],
    rows: NDArray[np.bool_],
) -> tuple[list[float], float, float]:
    """Per-fold macro-F1 differences on ``rows``, their mean, and the tolerance their spread allows."""
    differences = []
    for k in np.unique(fold[rows]):
        part = rows & (fold == k)
        mine = compute_metrics(teams, y[part], ours[part]).macro_f1
        base = compute_metrics(teams, y[part], theirs[part]).macro_f1
        differences.append(float(mine - base))
    if not differences:
        return [], 0.0, 0.0
    mean = float(np.mean(differences))
    if len(differences) < 2:
        return differences, mean, 0.0
    spread = float(np.std(differences, ddof=1) / np.sqrt(len(differences)))
    tolerance = float(student_t.ppf(CONFIDENCE, len(differences) - 1) * spread)
    return differences, mean, min(tolerance, MAX_TOLERANCE)


def judge(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    candidate: TrainingParams,
    active: ActiveRecipe | None,
    max_ece: float,
    *,
    candidate_cv: OutOfFold | None = None,
    corrections: CorrectionCheck | None = None,
    corpus: Corpus | None = None,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> GateResult:
    """Cross-validate the candidate and the active recipe on the same folds and compare.

    ``candidate_cv`` is the candidate's own cross-validation from training (the same folds), so
    only the active recipe's folds are fitted here; ``corrections`` is ``check_corrections``'s
    verdict on the corrected tickets, when there are any.
    """
    if active is None:
        return GateResult(True, "no active model", None, None, None, max_ece)
    plan = fold_plan(taxonomy, examples, candidate)
    if plan is None:
        return GateResult(True, "too few examples to cross-validate; nothing to compare", None, None, None, max_ece)
    teams = taxonomy.ids
    if corpus is None or corpus.ngram_max != active.params.pipeline.ngram_max:
        corpus = corpus_for([taxonomy, active.taxonomy], examples, active.params)
    if candidate_cv is None or not np.array_equal(candidate_cv.rows, plan.rows):
        candidate_cv = out_of_fold(taxonomy, examples, candidate, corpus=corpus, pool=pool, progress=progress)
        assert candidate_cv is not None
    ours, evidence, y = candidate_cv.logits, candidate_cv.evidence, candidate_cv.y
    if not corpus.has(text for text, _ in prior_documents(active.taxonomy)):
        corpus = corpus_for([taxonomy, active.taxonomy], examples, active.params)
    tasks = []
    for train_idx, test_idx in plan.splits:
        seen = [
            t
            for t in [plan.eligible[i] for i in train_idx] + plan.always
            if t.team in active.taxonomy.ids and (active.example_keys is None or example_key(t) in active.example_keys)
        ]
        test = [plan.eligible[i] for i in test_idx]
        tasks.append(fit_task(corpus, active.taxonomy, seen, active.params, test=test, stage=GATE_STAGE))
    results = run_fits(corpus, tasks, active.params.pipeline, len(active.taxonomy.ids), pool=pool, progress=progress)
    active_columns = [active.taxonomy.ids.index(t) if t in active.taxonomy.ids else -1 for t in teams]
    theirs = np.full((len(plan.eligible), len(teams)), -1e9)
    for (_, test_idx), result in zip(plan.splits, results, strict=True):
        assert result.logits is not None
        for column, source in enumerate(active_columns):
            if source >= 0:
                theirs[test_idx, column] = result.logits[:, source]
    chosen = np.array([not candidate.calibrate_on or t.source in candidate.calibrate_on for t in plan.eligible])
    if chosen.sum() < len(teams) * 10:
        chosen[:] = True
    mine_proba = calibrate(ours, evidence, y, chosen, candidate)[1]
    base_proba = softmax(theirs / fit_temperature(theirs, y), axis=1)
    mine, base = compute_metrics(teams, y, mine_proba), compute_metrics(teams, y, base_proba)
    everywhere = np.ones(len(plan.eligible), dtype=bool)
    differences, mean, tolerance = _paired(teams, y, mine_proba, base_proba, candidate_cv.fold, everywhere)
    check = corrections or CorrectionCheck(0, 0, 0)

    def verdict(passed: bool, reason: str) -> GateResult:
        return GateResult(
            passed,
            reason,
            mine.macro_f1,
            base.macro_f1,
            mine.ece,
            max_ece,
            mine.n,
            fold_differences=differences,
            mean_difference=mean,
            tolerance=tolerance,
            corrections_checked=check.checked,
            corrections_fixed=check.fixed,
            corrections_broken=check.broken,
        )

    f1, baseline_f1, ece, n = mine.macro_f1, base.macro_f1, mine.ece, mine.n
    paired = f"mean per-fold difference {mean:+.4f}, tolerance {tolerance:.4f} over {len(differences)} folds"
    if mean < -tolerance - 1e-9:
        others = np.array([not (t.source or "").startswith(CORRECTION_SOURCE) for t in plan.eligible])
        _, elsewhere, allowed = _paired(teams, y, mine_proba, base_proba, candidate_cv.fold, others)
        if not (check.fixed > 0 and check.broken == 0 and elsewhere >= -allowed - 1e-9):
            reason = (
                f"macro-F1 {f1:.4f} is worse than the active model's {baseline_f1:.4f} on the same folds"
                f" beyond fold noise ({paired})"
            )
            return verdict(False, reason)
        judged = (
            f"fixes {check.fixed} of {check.checked} corrected tickets, breaks none, and loses nothing beyond"
            f" noise elsewhere (mean difference {elsewhere:+.4f}, tolerance {allowed:.4f})"
        )
    else:
        judged = f"macro-F1 {f1:.4f} vs active {baseline_f1:.4f} on the same folds ({paired})"
        if check.checked:
            judged += f"; corrected tickets: {check.fixed} fixed, {check.broken} broken of {check.checked}"
    if n >= MIN_TICKETS_FOR_ECE and ece > max_ece:
        reason = f"calibration error {ece:.4f} is above the bound {max_ece:.4f}"
        return verdict(False, reason)
    calibration = f"ECE {ece:.4f} <= {max_ece:.4f}" if n >= MIN_TICKETS_FOR_ECE else f"ECE not judged on {n} tickets"
    return verdict(True, f"{judged}; {calibration}")
