from __future__ import annotations

import msgspec
import numpy as np
import pytest

from model.evaluation import (
    Metrics,
    ReliabilityBin,
    ThresholdRow,
    choose_threshold,
    compute_metrics,
    confusion_png,
    expected_calibration_error,
    reliability_bins,
    reliability_png,
    threshold_table,
)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    confidence = np.array([0.75] * 4)
    correct = np.array([True, True, True, False])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.0)


def test_ece_measures_overconfidence_per_bin() -> None:
    # Bin (0.9, 1.0]: confidence 0.95, accuracy 0.5; bin (0.5, 0.6]: confidence 0.55, accuracy 1.0.
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([True, False, True, True])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.5 * 0.45 + 0.5 * 0.45)


def test_threshold_table_counts_routed_and_precision() -> None:
    rows = threshold_table(np.array([0.9, 0.8, 0.4, 0.3]), np.array([True, True, False, True]), (0.0, 0.5, 0.95))
    assert rows[0] == ThresholdRow(threshold=0.0, routed=1.0, precision=0.75, abstained=0.0)
    assert rows[1] == ThresholdRow(threshold=0.5, routed=0.5, precision=1.0, abstained=0.5)
    assert rows[2] == ThresholdRow(threshold=0.95, routed=0.0, precision=None, abstained=1.0)


def test_choose_threshold_routes_the_most_tickets_that_meet_the_target() -> None:
    rows = [
        ThresholdRow(0.3, 1.0, 0.80, 0.0),
        ThresholdRow(0.5, 0.8, 0.91, 0.2),
        ThresholdRow(0.7, 0.5, 0.97, 0.5),
    ]
    assert choose_threshold(rows, 0.9) == 0.5
    assert choose_threshold(rows, 0.95) == 0.7
    assert choose_threshold(rows, 0.99) == 0.7  # unreachable: the most precise one


def test_metrics_per_team_and_confusion() -> None:
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    metrics = compute_metrics(["A", "B"], np.array([0, 1, 1, 1]), proba)
    assert metrics.confusion == [[1, 0], [1, 2]]
    assert metrics.accuracy == pytest.approx(0.75)
    assert metrics.per_team["A"].precision == pytest.approx(0.5)
    assert metrics.per_team["B"].recall == pytest.approx(2 / 3)
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)


def test_reliability_bins_hold_each_bins_count_confidence_and_accuracy() -> None:
    confidence = np.array([0.95, 0.95, 0.55, 0.55, 0.0])
    correct = np.array([True, False, True, True, False])
    bins = reliability_bins(confidence, correct)
    assert bins == [
        ReliabilityBin(lower=0.0, upper=pytest.approx(0.1), count=1, confidence=0.0, accuracy=0.0),
        ReliabilityBin(lower=0.5, upper=pytest.approx(0.6), count=2, confidence=0.55, accuracy=1.0),
        ReliabilityBin(lower=pytest.approx(0.9), upper=1.0, count=2, confidence=0.95, accuracy=0.5),
    ]
    gaps = sum(b.count * abs(b.accuracy - b.confidence) for b in bins) / 5
    assert expected_calibration_error(confidence, correct) == pytest.approx(gaps)


def test_metrics_carry_reliability_and_old_manifests_still_decode() -> None:
    metrics = compute_metrics(["A", "B"], np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]]))
    assert sum(b.count for b in metrics.reliability) == 3
    old = msgspec.to_builtins(metrics)
    del old["reliability"]
    assert msgspec.convert(old, Metrics).reliability == []


def test_charts_are_png_images_even_with_long_team_names() -> None:
    metrics = compute_metrics(["A" * 64, "B"], np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    for image in (confusion_png(metrics), reliability_png(metrics)):
        assert image.startswith(b"\x89PNG\r\n\x1a\n")
    empty = msgspec.structs.replace(metrics, reliability=[])
    assert reliability_png(empty).startswith(b"\x89PNG")


def test_team_thresholds_are_chosen_per_team_and_never_below_the_global_one() -> None:
    from model.evaluation import team_threshold_table

    def choose_team_thresholds(
        labels: list[str], truth: np.ndarray, proba: np.ndarray, target: float, fallback: float
    ) -> dict[str, float]:
        table = team_threshold_table(labels, truth, proba, target, fallback)
        return {team: row.threshold for team, row in table.items()}

    rng = np.random.default_rng(0)
    n = 400
    y = rng.integers(0, 2, n)
    confidence = rng.uniform(0.5, 1.0, n)
    predicted = np.where(rng.uniform(size=n) < 0.5, 0, 1)
    # Team 0's decisions are right only when confident; team 1's are always right.
    truth = np.where(predicted == 0, np.where(confidence > 0.8, 0, 1), 1)
    proba = np.zeros((n, 2))
    proba[np.arange(n), predicted] = confidence
    proba[np.arange(n), 1 - predicted] = 1 - confidence
    del y
    chosen = choose_team_thresholds(["A", "B"], truth, proba, 0.9, fallback=0.3)
    assert chosen["A"] >= 0.8, "team A needs a high threshold for 90% precision"
    assert chosen["B"] == 0.3, "team B meets the target at any threshold, but not below the global one"
    few = choose_team_thresholds(["A", "B"], truth[:10], proba[:10], 0.9, fallback=0.45)
    assert few == {"A": 0.45, "B": 0.45}, "too few decisions to measure: the global threshold"
