"""Training a new version from the training data and stored corrections, through the promotion gate."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import msgspec

from model.dataset import LabelledTicket, TrainingData, load_training_data
from model.errors import ModelIntegrityError, ModelNotFoundError
from model.fitting import PARALLEL_MIN_TEXTS, Progress, workers
from model.promotion import (
    CORRECTION_SOURCE,
    GATE_STAGE,
    ActiveRecipe,
    CorrectionCheck,
    GateResult,
    check_corrections,
    example_key,
    judge,
)
from model.registry import Activation, Manifest, Registry
from model.taxonomy import Taxonomy, TaxonomyChange, diff_taxonomies
from model.text import fingerprint
from model.training import CV_STAGE, TrainedModel, TrainingParams, corpus_for, train
from service.corrections import latest_per_ticket
from service.pointers import registry_for
from service.settings import Settings
from service.store import CorrectionRecord, Store
from service.trackers import registry as trackers

__all__ = [
    "GateRefusedError",
    "StepProgress",
    "TrainingOutcome",
    "TrainingStep",
    "corrections_as_examples",
    "ensure_active_model",
    "load_training_data_for",
    "promote",
    "train_version",
    "training_params",
]

log = logging.getLogger("ticket_router.trainer")


class TrainingOutcome(msgspec.Struct, frozen=True):
    """What a training run produced and whether it became the active model."""

    version: str
    activated: bool
    reason: str
    gate: GateResult
    taxonomy_change: TaxonomyChange | None
    cold_start_teams: list[str]
    corrections_used: int
    corrections_dropped: int
    macro_f1: float | None
    ece: float | None
    seconds: float
    # Activation was asked for and the promotion gate refused it (``reason`` says why).
    refused: bool = False


class TrainingStep(msgspec.Struct, frozen=True):
    """How far a training run is: ``done`` of ``total`` fits of its ``stage``, ``fraction`` of all its fits."""

    stage: str
    done: int
    total: int
    fraction: float

    def describe(self) -> str:
        """One line for a person: "cross-validation: fold 2 of 5 fitted"."""
        if not self.total:
            return self.stage
        unit = "fold" if self.total > 1 else "fit"
        return f"{self.stage}: {unit} {self.done} of {self.total} done"


StepProgress = Callable[[TrainingStep], None]


def _steps(report: StepProgress | None, gated: bool) -> Progress | None:
    """The core's (stage, done, total) events as steps with the share of the whole run done.

    A run fits the cross-validation folds, the final model and, when a model is active, the
    active recipe's folds for the gate: as many fits again as there are folds.
    """
    if report is None:
        return None
    finished: dict[str, int] = {}
    planned: dict[str, int] = {}

    def progress(stage: str, done: int, total: int) -> None:
        finished[stage], planned[stage] = done, total
        folds = planned.get(CV_STAGE, total if stage == GATE_STAGE else 0)
        expected = folds + 1 + (folds if gated else 0)
        fraction = min(1.0, sum(finished.values()) / expected) if expected else 1.0
        report(TrainingStep(stage, done, total, fraction))

    return progress


def training_params(settings: Settings) -> TrainingParams:
    """Training parameters as the settings ask for them."""
    return TrainingParams(target_precision=settings.target_precision)


def load_training_data_for(settings: Settings) -> TrainingData:
    """The configured training data, its team labels checked against the registered trackers."""
    return load_training_data(settings.training_data, trackers.names())


def corrections_as_examples(
    corrections: Sequence[CorrectionRecord], taxonomy: Taxonomy, weight: float
) -> tuple[list[LabelledTicket], int]:
    """Corrections people made, as weighted examples: the latest per ticket wins.

    Corrections without text (feedback on a decision id alone) cannot train; corrections to a
    team that is no longer in the taxonomy are dropped and counted.
    """
    latest = latest_per_ticket(corrections)
    known = set(taxonomy.ids)
    examples = [
        LabelledTicket(
            title=r.title, body=r.body, team=r.team, id=r.id, source=f"{CORRECTION_SOURCE}{r.source}", weight=weight
        )
        for r in latest
        if r.team in known
    ]
    return examples, sum(1 for r in latest if r.team not in known)


def _merge(data: TrainingData, corrected: list[LabelledTicket]) -> list[LabelledTicket]:
    """Training examples with any example that a correction relabels replaced by the correction."""
    replaced = {fingerprint(t.text) for t in corrected}
    return [t for t in data.examples if fingerprint(t.text) not in replaced] + corrected


def train_version(
    settings: Settings,
    *,
    activate: bool = True,
    force: bool = False,
    note: str = "",
    actor: str = "cli",
    store: Store | None = None,
    params: TrainingParams | None = None,
    progress: StepProgress | None = None,
) -> TrainingOutcome:
    """Train from the training data and stored corrections; activate if the gate passes (or ``force``).

    ``params`` replaces the parameters the settings give (for experiments; the gate judges them);
    ``progress`` hears of each step.
    """
    data = load_training_data_for(settings)
    options = _Options(activate, force, note, actor, params, progress)
    if store is not None:
        return _train_with_store(settings, data, store, options)
    with Store.for_settings(settings) as opened:
        return _train_with_store(settings, data, opened, options)


class _Options(msgspec.Struct, frozen=True):
    activate: bool
    force: bool
    note: str
    actor: str
    params: TrainingParams | None
    progress: StepProgress | None


def training_jobs(texts: int) -> int:
    """How many processes fit folds side by side: one per core, once there are enough texts to pay."""
    return max(1, os.cpu_count() or 1) if texts >= PARALLEL_MIN_TEXTS else 1


def _train_with_store(settings: Settings, data: TrainingData, store: Store, options: _Options) -> TrainingOutcome:
    corrected, dropped = corrections_as_examples(store.corrections.all(), data.taxonomy, settings.correction_weight)
    examples = _merge(data, corrected)
    params = options.params or training_params(settings)
    registry = registry_for(settings, store)
    active = _active_manifest(registry)
    if options.progress is not None:
        teams = len(data.taxonomy.teams)
        options.progress(TrainingStep(f"reading {len(examples):,} examples and {teams} teams' descriptions", 0, 0, 0.0))
    progress = _steps(options.progress, gated=active is not None)
    corpus = corpus_for([data.taxonomy] + ([active.taxonomy] if active else []), examples, params)
    with workers(training_jobs(len(corpus))) as pool:
        model = train(data.taxonomy, examples, params, corpus=corpus, pool=pool, progress=progress)
        gate = judge(
            data.taxonomy,
            examples,
            params,
            _recipe(active),
            settings.max_ece,
            candidate_cv=model.out_of_fold,
            corrections=_correction_check(registry, active, model, corrected),
            corpus=corpus,
            pool=pool,
            progress=progress,
        )
    change = diff_taxonomies(active.taxonomy, data.taxonomy) if active else None
    manifest = registry.save(
        model,
        data.taxonomy,
        note=options.note,
        corrections_used=len(corrected),
        corrections_dropped=dropped,
        taxonomy_change=change,
        gate=gate,
        gate_against=active.version if active else None,
        example_keys=[example_key(t) for t in examples],
    )
    activated = refused = False
    force, actor = options.force, options.actor
    if not options.activate:
        reason = "stored as a candidate (activation not requested)"
    elif gate.passed or force:
        registry.activate(manifest.version, actor=actor, reason="forced" if force and not gate.passed else gate.reason)
        activated = True
        reason = "activated" + (" (forced past the gate)" if force and not gate.passed else "")
    else:
        refused = True
        reason = f"refused by the promotion gate, stored as a candidate: {gate.reason}"
    log.info("trained model %s in %.1fs: %s", manifest.version, model.report.seconds, reason)
    cv = model.report.cv
    return TrainingOutcome(
        version=manifest.version,
        activated=activated,
        reason=reason,
        gate=gate,
        taxonomy_change=change,
        cold_start_teams=model.report.cold_start_teams,
        corrections_used=len(corrected),
        corrections_dropped=dropped,
        macro_f1=cv.macro_f1 if cv else None,
        ece=cv.ece if cv else None,
        seconds=model.report.seconds,
        refused=refused,
    )


def _correction_check(
    registry: Registry, active: Manifest | None, model: TrainedModel, corrected: list[LabelledTicket]
) -> CorrectionCheck | None:
    """How the candidate and the active model decide the corrected tickets (None when it cannot be told)."""
    if active is None or not corrected:
        return None
    try:
        loaded = registry.load(active.version)
    except (ModelNotFoundError, ModelIntegrityError):
        return None
    return check_corrections(corrected, model.pipeline, model.teams, loaded.pipeline, active.teams)


def _recipe(manifest: Manifest | None) -> ActiveRecipe | None:
    """How a stored model was made, for the gate."""
    if manifest is None:
        return None
    keys = frozenset(manifest.example_keys) if manifest.example_keys else None
    return ActiveRecipe(taxonomy=manifest.taxonomy, params=manifest.params, example_keys=keys)


def _active_manifest(registry: Registry) -> Manifest | None:
    version = registry.active_version()
    if version is None:
        return None
    try:
        return registry.manifest(version)
    except (ModelNotFoundError, ModelIntegrityError):
        return None


def ensure_active_model(settings: Settings, progress: StepProgress | None = None) -> TrainingOutcome | None:
    """Train and activate the default model when the registry has no active version.

    Returns the outcome, or None when a version was already active.
    """
    with Store.for_settings(settings) as store:
        if registry_for(settings, store).active_version() is not None:
            return None
        return train_version(
            settings, note="default model trained at first start", actor="serve", store=store, progress=progress
        )


class GateRefusedError(Exception):
    """Raised when activation of a candidate is refused by the promotion gate (force overrides)."""


def promote(settings: Settings, store: Store, version: str, *, force: bool = False, actor: str = "cli") -> Activation:
    """Activate ``version`` if the gate lets it (judged again if the active model changed since training)."""
    registry = registry_for(settings, store)
    candidate = registry.manifest(version)
    active = _active_manifest(registry)
    if active is not None and active.version == version:
        return registry.activate(version, actor=actor, reason="already active")
    if force:
        return registry.activate(version, actor=actor, reason="forced")
    gate = candidate.gate
    if gate is None or active is None or candidate.gate_against != active.version:
        data = load_training_data_for(settings)
        corrected, _ = corrections_as_examples(store.corrections.all(), data.taxonomy, settings.correction_weight)
        examples = _merge(data, corrected)
        corrections = None
        if active is not None and corrected:
            mine, theirs = registry.load(version), registry.load(active.version)
            corrections = check_corrections(corrected, mine.pipeline, candidate.teams, theirs.pipeline, active.teams)
        with workers(training_jobs(len(examples))) as pool:
            gate = judge(
                data.taxonomy,
                examples,
                candidate.params,
                _recipe(active),
                settings.max_ece,
                corrections=corrections,
                pool=pool,
            )
    if not gate.passed:
        raise GateRefusedError(f"model {version} was not activated: {gate.reason}; use force to override")
    return registry.activate(version, actor=actor, reason=gate.reason)
