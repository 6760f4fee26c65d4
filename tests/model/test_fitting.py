"""Fitting on a shared corpus gives the model the plain scikit-learn pipeline gives, in one process or several."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model import fitting
from model.dataset import load_examples
from model.taxonomy import load_taxonomy
from model.training import TrainingParams, fit_pipeline, train

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)


def test_the_corpus_fit_is_the_pipeline_fit() -> None:
    params = TrainingParams()
    reference = fit_pipeline(TAXONOMY, MINI, params)
    model = train(TAXONOMY, MINI, params)
    ours, theirs = model.pipeline.named_steps["tfidf"], reference.named_steps["tfidf"]
    assert ours.vocabulary_ == theirs.vocabulary_
    assert np.array_equal(ours.idf_, theirs.idf_)
    # train() divides the coefficients by the temperature; undo that to compare the fits.
    coef = model.pipeline.named_steps["clf"].coef_ * model.report.temperature
    assert np.allclose(coef, reference.named_steps["clf"].coef_, atol=1e-9)
    texts = [t.model_text for t in MINI[:5]]
    assert np.array_equal(ours.transform(texts).toarray(), theirs.transform(texts).toarray())


def test_worker_processes_give_the_same_model(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[tuple[str, int, int]] = []
    serial = train(TAXONOMY, MINI)
    monkeypatch.setattr(fitting, "PARALLEL_MIN_TEXTS", 0)  # the mini set is far below the real threshold
    with fitting.workers(2) as pool:
        assert pool is not None
        parallel = train(TAXONOMY, MINI, pool=pool, progress=lambda *step: steps.append(step))
    assert np.array_equal(serial.pipeline.named_steps["clf"].coef_, parallel.pipeline.named_steps["clf"].coef_)
    assert serial.report.cv == parallel.report.cv and serial.threshold == parallel.threshold
    assert steps[-1] == ("final model", 1, 1) and [s for s in steps if s[0] == "cross-validation"][-1][1:] == (5, 5)
