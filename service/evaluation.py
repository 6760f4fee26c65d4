"""The ``evaluate`` command's work: cross-validation, an optional held-out test, report files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msgspec

from model.dataset import example_files, load_examples
from model.evaluation import (
    Metrics,
    TeamThreshold,
    choose_threshold,
    evaluate_classifier,
    plot_confusion,
    team_threshold_table,
)
from model.fitting import workers
from model.training import TrainingParams, cross_validate, train
from service.pointers import registry_for
from service.settings import Settings
from service.store import Store
from service.trainer import load_training_data_for, training_jobs, training_params

__all__ = ["EvaluationResult", "run_evaluation"]


class EvaluationResult(msgspec.Struct):
    """What ``evaluate`` measured and where it wrote it."""

    created_at: str
    training_data: str
    folds: int
    target_precision: float
    threshold: float | None
    cv: Metrics | None
    # Per team: its precision target (teams.toml, else the setting), the threshold it gets, and out of fold
    # the share of its tickets routed there and their precision.
    team_thresholds: dict[str, TeamThreshold] = {}
    holdout_file: str | None = None
    holdout_model: str | None = None
    holdout: Metrics | None = None
    files: list[str] = []


def run_evaluation(
    settings: Settings,
    folds: int,
    holdout: Path | None,
    model_version: str | None,
    out_dir: Path,
) -> EvaluationResult:
    """Cross-validate on the training examples; test on ``holdout`` if given; write JSON and PNGs."""
    data = load_training_data_for(settings)
    params: TrainingParams = msgspec.structs.replace(training_params(settings), folds=folds)
    with workers(training_jobs(len(data.examples))) as pool:
        cv = cross_validate(data.taxonomy, data.examples, params, pool=pool)
    result = EvaluationResult(
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        training_data=str(settings.training_data),
        folds=cv.folds if cv else 0,
        target_precision=settings.target_precision,
        threshold=choose_threshold(cv.metrics.thresholds, settings.target_precision) if cv else None,
        cv=cv.metrics if cv else None,
    )
    if cv is not None and result.threshold is not None:
        result.team_thresholds = team_threshold_table(
            data.taxonomy.ids, cv.y, cv.proba, settings.target_precision, result.threshold, data.taxonomy.targets()
        )
    if holdout is not None:
        if model_version:
            with Store.for_settings(settings) as store:
                registry = registry_for(settings, store)
                version = registry.active_version() if model_version == "active" else model_version
                loaded = registry.load_active() if model_version == "active" else registry.load(model_version)
            classifier = loaded.classifier(settings.max_text_chars)
            label = version or "active"
        else:
            trained = train(data.taxonomy, data.examples, params)
            classifier = trained.classifier("fresh", settings.max_text_chars)
            label = "fresh model trained on all examples"
        # The file may name teams the model does not know; those are validated against no taxonomy.
        tickets = load_examples(example_files(holdout), None)
        result.holdout_file = str(holdout)
        result.holdout_model = label
        result.holdout = evaluate_classifier(
            classifier.proba_many, classifier.teams, [(t.title, t.body, t.team) for t in tickets]
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    files = []
    if result.cv is not None:
        png = out_dir / f"confusion-cv-{stamp}.png"
        plot_confusion(result.cv, png, "Cross-validation")
        files.append(str(png))
    if result.holdout is not None:
        png = out_dir / f"confusion-holdout-{stamp}.png"
        plot_confusion(result.holdout, png, f"Held-out: {holdout.name if holdout else ''}")
        files.append(str(png))
    report = out_dir / f"evaluation-{stamp}.json"
    result.files = [*files, str(report)]
    report.write_bytes(msgspec.json.format(msgspec.json.encode(result)))
    return result
