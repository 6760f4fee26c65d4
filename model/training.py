"""Training: from a taxonomy and labelled examples to a calibrated pipeline and its report."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta
from numpy.typing import NDArray
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import Pipeline

from model.dataset import LabelledTicket, dataset_sha256
from model.errors import TrainingDataError
from model.evaluation import (
    Metrics,
    TeamThreshold,
    choose_threshold,
    compute_metrics,
    team_threshold_table,
    threshold_table,
)
from model.fitting import Corpus, FitResult, FitTask, Progress, classifier_logits, run_fits
from model.inference import Classifier
from model.pipeline import PipelineParams, build_pipeline
from model.taxonomy import Taxonomy

__all__ = [
    "CV_STAGE",
    "FINAL_STAGE",
    "CrossValidation",
    "FoldPlan",
    "OutOfFold",
    "TrainedModel",
    "TrainingParams",
    "TrainingReport",
    "calibrate",
    "corpus_for",
    "cross_validate",
    "decision_logits",
    "evidence_scale",
    "fit_pipeline",
    "fit_task",
    "fit_temperature",
    "fold_indices",
    "fold_plan",
    "logits_and_evidence",
    "out_of_fold",
    "prior_documents",
    "train",
]


class TrainingParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything besides the data that decides what training produces."""

    pipeline: PipelineParams = PipelineParams()
    prior_weight: Annotated[float, Meta(ge=0.0)] = 2.0
    folds: Annotated[int, Meta(ge=2, le=20)] = 5
    target_precision: Annotated[float, Meta(gt=0.0, le=1.0)] = 0.9
    default_threshold: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.5
    seed: int = 0
    # The share of an example's weight that goes to its ``alt`` team (0 ignores alt).
    alt_weight: Annotated[float, Meta(ge=0.0, le=0.5)] = 0.3
    # Cross-validation keeps each source file's examples in one fold, so every test part was
    # written by authors the fold's model never read: a fairer stand-in for other people's tickets.
    group_folds: bool = True
    # Each team gets its own abstain threshold for the precision target (else one for all).
    team_thresholds: bool = True
    # The examples whose out-of-fold decisions fit the temperature and the thresholds, by their
    # ``source`` (empty: every example). Choosing the rounds written in the register of real
    # streams calibrates the model for the tickets users send rather than for clean ones.
    calibrate_on: tuple[str, ...] = ("written-r6", "written-r7")
    # A ticket with n known features has its logits scaled by n / (n + evidence_shrink): a
    # two-word title cannot be as sure as a report, whatever its two words (0 turns this off).
    evidence_shrink: Annotated[float, Meta(ge=0.0)] = 10.0
    # The fitted temperature is multiplied by this: other people's tickets differ from ours more
    # than our folds differ from each other (chosen on the real-stream dev part; 1 leaves it).
    stream_margin: Annotated[float, Meta(ge=1.0, le=3.0)] = 1.25


class TrainingReport(msgspec.Struct, frozen=True):
    """What a training run saw and measured; stored in the model's manifest."""

    teams: list[str]
    data_sha256: str
    n_examples: int
    examples_per_team: dict[str, int]
    cold_start_teams: list[str]
    folds: int
    temperature: float
    threshold: float
    threshold_source: str
    cv: Metrics | None
    seconds: float
    team_thresholds: dict[str, float] = {}
    # Per team: its precision target, threshold and out-of-fold routed share and precision there.
    team_routing: dict[str, TeamThreshold] = {}


class TrainedModel:
    """A fitted, calibrated pipeline with the taxonomy order of its outputs and its threshold."""

    __slots__ = ("out_of_fold", "params", "pipeline", "report", "team_thresholds", "teams", "threshold")

    def __init__(
        self,
        pipeline: Pipeline,
        teams: tuple[str, ...],
        threshold: float,
        params: TrainingParams,
        report: TrainingReport,
        out_of_fold: OutOfFold | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.out_of_fold = out_of_fold
        self.teams = teams
        self.threshold = threshold
        self.team_thresholds = report.team_thresholds
        self.params = params
        self.report = report

    def classifier(self, version: str = "fresh", max_chars: int = 20_000) -> Classifier:
        """The decision function of this model as the service would build it from its manifest."""
        return Classifier(
            self.pipeline,
            self.teams,
            self.threshold,
            version,
            max_chars,
            self.team_thresholds,
            self.params.evidence_shrink,
        )


def prior_documents(taxonomy: Taxonomy) -> list[tuple[str, int]]:
    """Training documents written from the taxonomy itself: (text, team index).

    Each team contributes its description, each responsibility, its terms, and each of its tools
    as a document of its own (a tool's name alone is strong evidence), so a model can be
    trained before a single example exists (cold start).
    """
    docs: list[tuple[str, int]] = []
    for index, team in enumerate(taxonomy.teams):
        docs.append((f"{team.name}. {team.description}", index))
        docs.extend((sentence, index) for sentence in team.responsibilities)
        if team.terms:
            docs.append((". ".join(team.terms), index))
        docs.extend((tool, index) for tool in team.tools)
    return docs


def _check_evidence(
    taxonomy: Taxonomy, examples: Sequence[LabelledTicket], params: TrainingParams, corpus: Corpus
) -> None:
    evidence: Counter[int] = Counter()
    if params.prior_weight > 0:
        docs = prior_documents(taxonomy)
        found = corpus.has_terms(corpus.rows([text for text, _ in docs]))
        evidence.update(index for (_, index), ok in zip(docs, found, strict=True) if ok)
    index_of = {team_id: i for i, team_id in enumerate(taxonomy.ids)}
    found = corpus.has_terms(corpus.rows([t.model_text for t in examples]))
    evidence.update(index_of[t.team] for t, ok in zip(examples, found, strict=True) if ok)
    missing = [team_id for i, team_id in enumerate(taxonomy.ids) if not evidence[i]]
    if missing:
        raise TrainingDataError(
            f"no evidence for team(s) {missing}: give each team a description with words in it"
            " or at least one labelled example"
        )


def training_rows(
    taxonomy: Taxonomy, examples: Sequence[LabelledTicket], params: TrainingParams
) -> tuple[list[str], list[int], list[float]]:
    """What a model is fitted on: texts, team indices and weights (the teams' own documents first).

    A ticket with an ``alt`` team honestly fits two teams: it teaches both (``alt_weight`` of its
    weight to the other one), so neither is learnt as certain.
    """
    index_of = {team_id: i for i, team_id in enumerate(taxonomy.ids)}
    texts: list[str] = []
    labels: list[int] = []
    weights: list[float] = []
    if params.prior_weight > 0:
        for text, index in prior_documents(taxonomy):
            texts.append(text)
            labels.append(index)
            weights.append(params.prior_weight)
    for ticket in examples:
        alt = index_of.get(ticket.alt) if ticket.alt is not None and params.alt_weight > 0 else None
        share = params.alt_weight if alt is not None else 0.0
        texts.append(ticket.model_text)
        labels.append(index_of[ticket.team])
        weights.append(ticket.weight * (1.0 - share))
        if alt is not None:
            texts.append(ticket.model_text)
            labels.append(alt)
            weights.append(ticket.weight * share)
    if len(set(labels)) < 2:
        raise TrainingDataError("training needs evidence for at least two teams")
    return texts, labels, weights


def fit_pipeline(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    params: TrainingParams,
) -> Pipeline:
    """Fit the pipeline on the taxonomy's own documents plus the examples (uncalibrated)."""
    texts, labels, weights = training_rows(taxonomy, examples, params)
    pipeline = build_pipeline(params.pipeline, _vocabulary(taxonomy, examples, params))
    pipeline.fit(texts, np.asarray(labels), clf__sample_weight=np.asarray(weights))
    return pipeline


def _vocabulary(taxonomy: Taxonomy, examples: Sequence[LabelledTicket], params: TrainingParams) -> list[str]:
    """Every term of the taxonomy's documents, plus example terms found in ``min_df`` examples or more.

    Rare example terms are mostly names, ids and typos; the taxonomy's words are kept whatever
    their count, so a team described in one sentence still has its evidence.
    """
    analyzer = build_pipeline(params.pipeline).named_steps["tfidf"].build_analyzer()
    document_frequency: Counter[str] = Counter()
    for ticket in examples:
        document_frequency.update(set(analyzer(ticket.model_text)))
    terms = {term for term, count in document_frequency.items() if count >= params.pipeline.min_df}
    if params.prior_weight > 0:
        for text, _ in prior_documents(taxonomy):
            terms.update(analyzer(text))
    return sorted(terms)


def decision_logits(pipeline: Pipeline, texts: Sequence[str], n_teams: int) -> NDArray[np.float64]:
    """Per-team logits in taxonomy order; softmax of a row is the pipeline's predict_proba."""
    return logits_and_evidence(pipeline, texts, n_teams)[0]


def logits_and_evidence(
    pipeline: Pipeline, texts: Sequence[str], n_teams: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Per-team logits in taxonomy order, and each text's number of known features (its evidence)."""
    features = pipeline.named_steps["tfidf"].transform(list(texts))
    evidence = np.diff(features.indptr).astype(np.int64)
    return classifier_logits(pipeline.named_steps["clf"], features, n_teams), evidence


def evidence_scale(evidence: NDArray[np.int64], shrink: float) -> NDArray[np.float64]:
    """The factor each ticket's logits are scaled by for its evidence: n / (n + shrink)."""
    counts = evidence.astype(np.float64)
    if shrink <= 0:
        return np.ones_like(counts)
    return counts / (counts + shrink)


def fit_temperature(logits: NDArray[np.float64], y: NDArray[np.int64]) -> float:
    """The temperature T minimising the log loss of softmax(logits / T)."""

    def loss(log_t: float) -> float:
        scaled = logits / np.exp(log_t)
        return float(-log_softmax(scaled, axis=1)[np.arange(y.size), y].mean())

    result = minimize_scalar(loss, bounds=(-3.0, 3.0), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(result.x))


def _group_of(ticket: LabelledTicket, position: int) -> str:
    """The fold group of an example: its source file (one author's round), else the example itself."""
    path, _, _ = ticket.origin.rpartition(":")
    return path or f"#{position}"


def fold_indices(
    eligible: Sequence[LabelledTicket], y: NDArray[np.int64], params: TrainingParams, folds: int
) -> list[tuple[NDArray[np.intp], NDArray[np.intp]]]:
    """The (train, test) index pairs of cross-validation, the same for training and the promotion gate.

    With ``group_folds`` and at least as many source files as folds, a file's examples stay in
    one fold; otherwise the folds are stratified by team only.
    """
    groups = [_group_of(t, i) for i, t in enumerate(eligible)]
    placeholder = np.zeros(len(eligible))
    if params.group_folds and len(set(groups)) >= folds:
        grouped = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=params.seed)
        return list(grouped.split(placeholder, y, groups))
    plain = StratifiedKFold(n_splits=folds, shuffle=True, random_state=params.seed)
    return list(plain.split(placeholder, y))


class OutOfFold(msgspec.Struct, frozen=True):
    """Cross-validation's raw material: each eligible example's out-of-fold logits, evidence and fold.

    ``rows`` are the examples' positions in the list given to training; the promotion gate reuses
    these logits instead of fitting the candidate's folds again.
    """

    y: NDArray[np.int64]
    logits: NDArray[np.float64]
    evidence: NDArray[np.int64]
    fold: NDArray[np.int64]
    folds: int
    sources: list[str]
    rows: NDArray[np.intp]


class FoldPlan(msgspec.Struct, frozen=True):
    """Which examples cross-validation scores (``eligible``, at ``rows``), what every fold adds, and the folds."""

    eligible: list[LabelledTicket]
    always: list[LabelledTicket]
    rows: NDArray[np.intp]
    y: NDArray[np.int64]
    folds: int
    splits: list[tuple[NDArray[np.intp], NDArray[np.intp]]]


def fold_plan(taxonomy: Taxonomy, examples: Sequence[LabelledTicket], params: TrainingParams) -> FoldPlan | None:
    """Which examples cross-validation scores and on which folds; None with too few examples."""
    index_of = {team_id: i for i, team_id in enumerate(taxonomy.ids)}
    counts = Counter(t.team for t in examples)
    rows = np.asarray([i for i, t in enumerate(examples) if counts[t.team] >= 2], dtype=np.intp)
    eligible = [examples[i] for i in rows]
    always = [t for t in examples if counts[t.team] < 2]
    eligible_counts = [c for c in counts.values() if c >= 2]
    if len(eligible_counts) < 2:
        return None
    folds = min(params.folds, min(eligible_counts))
    y = np.asarray([index_of[t.team] for t in eligible], dtype=np.int64)
    return FoldPlan(eligible, always, rows, y, folds, fold_indices(eligible, y, params, folds))


def corpus_for(taxonomies: Sequence[Taxonomy], examples: Sequence[LabelledTicket], params: TrainingParams) -> Corpus:
    """Every text training reads (the taxonomies' documents and the examples), analysed once."""
    texts = [text for taxonomy in taxonomies for text, _ in prior_documents(taxonomy)]
    texts += [t.model_text for t in examples]
    return Corpus(params.pipeline, texts)


def _covers(corpus: Corpus, taxonomy: Taxonomy, examples: Sequence[LabelledTicket], params: TrainingParams) -> bool:
    """Whether ``corpus`` analysed these texts the way ``params`` reads them."""
    texts = [text for text, _ in prior_documents(taxonomy)] + [t.model_text for t in examples]
    return corpus.ngram_max == params.pipeline.ngram_max and corpus.has(texts)


def fit_task(
    corpus: Corpus,
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    params: TrainingParams,
    test: Sequence[LabelledTicket] | None = None,
    stage: str = "",
) -> FitTask:
    """What ``fit_pipeline`` fits, as corpus rows and columns (and the rows to score, if any)."""
    texts, labels, weights = training_rows(taxonomy, examples, params)
    # The vocabulary ``_vocabulary`` chooses: example terms in min_df examples or more, every taxonomy term.
    keep = corpus.document_frequency(corpus.rows([t.model_text for t in examples])) >= params.pipeline.min_df
    if params.prior_weight > 0:
        keep |= corpus.document_frequency(corpus.rows([text for text, _ in prior_documents(taxonomy)])) > 0
    return FitTask(
        rows=corpus.rows(texts),
        labels=np.asarray(labels, dtype=np.int64),
        weights=np.asarray(weights, dtype=np.float64),
        columns=np.flatnonzero(keep).astype(np.intp),
        test_rows=None if test is None else corpus.rows([t.model_text for t in test]),
        stage=stage,
    )


CV_STAGE = "cross-validation"
FINAL_STAGE = "final model"


def _fold_tasks(plan: FoldPlan, corpus: Corpus, taxonomy: Taxonomy, params: TrainingParams) -> list[FitTask]:
    return [
        fit_task(
            corpus,
            taxonomy,
            [plan.eligible[i] for i in train_idx] + plan.always,
            params,
            test=[plan.eligible[i] for i in test_idx],
            stage=CV_STAGE,
        )
        for train_idx, test_idx in plan.splits
    ]


def _assemble(plan: FoldPlan, results: Sequence[FitResult], n_teams: int) -> OutOfFold:
    logits = np.zeros((len(plan.eligible), n_teams))
    evidence = np.zeros(len(plan.eligible), dtype=np.int64)
    fold = np.zeros(len(plan.eligible), dtype=np.int64)
    for k, ((_, test_idx), result) in enumerate(zip(plan.splits, results, strict=True)):
        assert result.logits is not None and result.evidence is not None
        logits[test_idx], evidence[test_idx], fold[test_idx] = result.logits, result.evidence, k
    sources = [t.source or "" for t in plan.eligible]
    return OutOfFold(plan.y, logits, evidence, fold, plan.folds, sources, plan.rows)


def out_of_fold(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    params: TrainingParams,
    *,
    corpus: Corpus | None = None,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> OutOfFold | None:
    """Every eligible example decided by the model of the folds it was not in; None with too few."""
    plan = fold_plan(taxonomy, examples, params)
    if plan is None:
        return None
    corpus = corpus if corpus is not None and _covers(corpus, taxonomy, examples, params) else None
    corpus = corpus or corpus_for([taxonomy], examples, params)
    tasks = _fold_tasks(plan, corpus, taxonomy, params)
    results = run_fits(corpus, tasks, params.pipeline, len(taxonomy.ids), pool=pool, progress=progress)
    return _assemble(plan, results, len(taxonomy.ids))


def calibrate(
    logits: NDArray[np.float64],
    evidence: NDArray[np.int64],
    y: NDArray[np.int64],
    chosen: NDArray[np.bool_],
    params: TrainingParams,
) -> tuple[float, NDArray[np.float64]]:
    """The temperature for out-of-fold ``logits`` (fitted on the ``chosen`` rows), and every row's probabilities.

    Logits are first scaled for each ticket's evidence; the fitted temperature is then widened by
    ``stream_margin``.
    """
    scaled = logits * evidence_scale(evidence, params.evidence_shrink)[:, None]
    temperature = fit_temperature(scaled[chosen], y[chosen]) * params.stream_margin
    return temperature, softmax(scaled / temperature, axis=1)


class CrossValidation(msgspec.Struct, frozen=True):
    """Metrics of calibrated out-of-fold decisions, the temperature fitted on them and the fold count."""

    metrics: Metrics
    temperature: float
    folds: int
    proba: NDArray[np.float64]
    y: NDArray[np.int64]


def cross_validate(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    params: TrainingParams,
    *,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> CrossValidation | None:
    """Stratified k-fold cross-validation on the examples (the taxonomy's documents train every fold).

    None when fewer than two teams have two or more examples.
    """
    cv = out_of_fold(taxonomy, examples, params, pool=pool, progress=progress)
    return None if cv is None else _calibrated(taxonomy, cv, params)


def _calibrated(taxonomy: Taxonomy, cv: OutOfFold, params: TrainingParams) -> CrossValidation:
    """Metrics of the out-of-fold decisions once calibrated, and the temperature that calibrates them."""
    chosen = np.array([not params.calibrate_on or source in params.calibrate_on for source in cv.sources])
    if chosen.sum() < len(taxonomy.ids) * 10:  # too few of the chosen sources: calibrate on everything
        chosen[:] = True
    temperature, proba = calibrate(cv.logits, cv.evidence, cv.y, chosen, params)
    return CrossValidation(
        compute_metrics(taxonomy.ids, cv.y, proba), temperature, cv.folds, proba[chosen], cv.y[chosen]
    )


def train(
    taxonomy: Taxonomy,
    examples: Sequence[LabelledTicket],
    params: TrainingParams | None = None,
    *,
    corpus: Corpus | None = None,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> TrainedModel:
    """Train a calibrated model; deterministic for the same taxonomy, examples and params.

    Cross-validation on the examples measures the model, fits the temperature that
    calibrates its probabilities and picks the abstain threshold for the precision target.
    With too few examples for that (cold start), the temperature is 1 and the threshold is
    ``params.default_threshold``. ``corpus`` may bring the texts already analysed; ``pool``'s
    processes (``fitting.workers``) fit the folds and the final model side by side (the model is
    the same either way); ``progress`` hears of each finished fit.
    """
    params = params or TrainingParams()
    started = time.perf_counter()
    known = set(taxonomy.ids)
    unknown = sorted({t.team for t in examples} - known)
    if unknown:
        raise TrainingDataError(f"examples name teams outside the taxonomy: {unknown}")
    corpus = corpus if corpus is not None and _covers(corpus, taxonomy, examples, params) else None
    corpus = corpus or corpus_for([taxonomy], examples, params)
    _check_evidence(taxonomy, examples, params, corpus)

    # The folds and the final model are independent, so they are fitted side by side.
    plan = fold_plan(taxonomy, examples, params)
    tasks = [] if plan is None else _fold_tasks(plan, corpus, taxonomy, params)
    tasks.append(fit_task(corpus, taxonomy, examples, params, stage=FINAL_STAGE))
    results = run_fits(corpus, tasks, params.pipeline, len(taxonomy.ids), pool=pool, progress=progress)
    pipeline = corpus.pipeline(params.pipeline, tasks[-1].columns, results[-1])
    oof = None if plan is None else _assemble(plan, results[:-1], len(taxonomy.ids))
    cv_result = None if oof is None else _calibrated(taxonomy, oof, params)

    team_thresholds: dict[str, float] = {}
    team_routing: dict[str, TeamThreshold] = {}
    targets = taxonomy.targets()
    if cv_result is None:
        metrics, temperature, folds = None, 1.0, 0
        threshold, source = params.default_threshold, "default (too few examples to measure)"
    else:
        metrics, temperature, folds = cv_result.metrics, cv_result.temperature, cv_result.folds
        chosen = cv_result.proba
        table = threshold_table(chosen.max(axis=1), chosen.argmax(axis=1) == cv_result.y)
        threshold = choose_threshold(table, params.target_precision)
        source = f"cross-validation, routed precision target {params.target_precision}"
        if params.team_thresholds or targets:
            team_routing = team_threshold_table(
                taxonomy.ids, cv_result.y, cv_result.proba, params.target_precision, threshold, targets
            )
            team_thresholds = {team: row.threshold for team, row in team_routing.items()}
            source += ", per team" + (f" (own targets: {targets})" if targets else "")

    # Fold the temperature into the classifier, so predict_proba itself is calibrated.
    clf = pipeline.named_steps["clf"]
    clf.coef_ = clf.coef_ / temperature
    clf.intercept_ = clf.intercept_ / temperature

    counts = Counter(t.team for t in examples)
    report = TrainingReport(
        teams=list(taxonomy.ids),
        data_sha256=dataset_sha256(taxonomy, examples),
        n_examples=len(examples),
        examples_per_team={team_id: counts.get(team_id, 0) for team_id in taxonomy.ids},
        cold_start_teams=[team_id for team_id in taxonomy.ids if not counts.get(team_id)],
        folds=folds,
        temperature=temperature,
        threshold=threshold,
        threshold_source=source,
        team_thresholds=team_thresholds,
        team_routing=team_routing,
        cv=metrics,
        seconds=time.perf_counter() - started,
    )
    return TrainedModel(pipeline, taxonomy.ids, threshold, params, report, oof)
