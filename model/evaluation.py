"""Measuring a router: accuracy, macro-F1, per-team scores, calibration and abstain thresholds."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import msgspec
import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ConfusionLike",
    "ConfusionScores",
    "Metrics",
    "ReliabilityBin",
    "TeamScores",
    "TeamThreshold",
    "ThresholdRow",
    "choose_threshold",
    "compute_metrics",
    "confusion_png",
    "confusion_scores",
    "evaluate_classifier",
    "expected_calibration_error",
    "plot_confusion",
    "reliability_bins",
    "reliability_png",
    "team_threshold_table",
    "threshold_table",
]

THRESHOLDS = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


class TeamScores(msgspec.Struct, frozen=True):
    """Precision, recall and F1 of one team, with its number of true tickets."""

    precision: float
    recall: float
    f1: float
    support: int


class ThresholdRow(msgspec.Struct, frozen=True):
    """What abstaining below ``threshold`` would do: share routed, their precision, share abstained."""

    threshold: float
    routed: float
    precision: float | None
    abstained: float


class ReliabilityBin(msgspec.Struct, frozen=True):
    """The decisions whose confidence fell in (``lower``, ``upper``]: how many, mean confidence, accuracy."""

    lower: float
    upper: float
    count: int
    confidence: float
    accuracy: float


class Metrics(msgspec.Struct, frozen=True):
    """Everything measured on one set of decisions against true teams.

    ``reliability`` holds the calibration bins behind ``ece`` (empty in manifests written before
    they were recorded).
    """

    n: int
    accuracy: float
    macro_f1: float
    ece: float
    per_team: dict[str, TeamScores]
    confusion: list[list[int]]
    labels: list[str]
    thresholds: list[ThresholdRow]
    reliability: list[ReliabilityBin] = []


def reliability_bins(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], bins: int = 10
) -> list[ReliabilityBin]:
    """Equal-width confidence bins that hold decisions, each with its mean confidence and accuracy."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    found = []
    for b in range(bins):
        mask = index == b
        count = int(mask.sum())
        if count:
            found.append(
                ReliabilityBin(
                    lower=float(edges[b]),
                    upper=float(edges[b + 1]),
                    count=count,
                    confidence=float(confidence[mask].mean()),
                    accuracy=float(correct[mask].mean()),
                )
            )
    return found


def expected_calibration_error(confidence: NDArray[np.float64], correct: NDArray[np.bool_], bins: int = 10) -> float:
    """ECE: the support-weighted gap between confidence and accuracy over equal-width bins."""
    if confidence.size == 0:
        return 0.0
    gaps = sum(b.count * abs(b.accuracy - b.confidence) for b in reliability_bins(confidence, correct, bins))
    return gaps / confidence.size


def threshold_table(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], thresholds: Sequence[float] = THRESHOLDS
) -> list[ThresholdRow]:
    """For each threshold: the share routed (confidence >= t), their precision, and the share abstained."""
    n = confidence.size
    rows = []
    for t in thresholds:
        routed = confidence >= t
        count = int(routed.sum())
        precision = float(correct[routed].mean()) if count else None
        share = count / n if n else 0.0
        rows.append(ThresholdRow(threshold=t, routed=share, precision=precision, abstained=1.0 - share))
    return rows


def choose_threshold(rows: Sequence[ThresholdRow], target_precision: float) -> float:
    """The lowest threshold whose routed precision meets the target (routing the most tickets).

    When no threshold reaches the target, the one with the best precision is taken.
    """
    meeting = [r for r in rows if r.precision is not None and r.precision >= target_precision]
    if meeting:
        return min(r.threshold for r in meeting)
    scored = [r for r in rows if r.precision is not None]
    if not scored:
        return 0.0
    return max(scored, key=lambda r: (r.precision or 0.0, -r.threshold)).threshold


class ConfusionScores(msgspec.Struct, frozen=True):
    """What a confusion matrix says: accuracy, macro-F1 and each team's scores."""

    n: int
    accuracy: float
    macro_f1: float
    per_team: dict[str, TeamScores]


def confusion_scores(labels: Sequence[str], confusion: NDArray[np.int64]) -> ConfusionScores:
    """Scores of a confusion matrix (rows: true team, columns: predicted, in ``labels`` order).

    Macro-F1 is over the teams that occur in the truth, as scikit-learn does with labels given.
    """
    per_team: dict[str, TeamScores] = {}
    f1s = []
    for i, label in enumerate(labels):
        tp = int(confusion[i, i])
        predicted = int(confusion[:, i].sum())
        actual = int(confusion[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_team[label] = TeamScores(precision=precision, recall=recall, f1=f1, support=actual)
        if actual:
            f1s.append(f1)
    n = int(confusion.sum())
    return ConfusionScores(
        n=n,
        accuracy=float(np.trace(confusion) / n) if n else 0.0,
        macro_f1=float(np.mean(f1s)) if f1s else 0.0,
        per_team=per_team,
    )


# A team decided fewer times than this out of fold keeps the global threshold: too few to measure.
MIN_DECISIONS_FOR_TEAM_THRESHOLD = 30


class TeamThreshold(msgspec.Struct, frozen=True):
    """One team's abstain threshold: the target it was chosen for, and what it does out of fold.

    ``routed`` is the share of the tickets given to the team that it keeps at the threshold and
    ``precision`` their precision (None when the team had too few decisions to measure, and kept
    the global threshold).
    """

    target: float
    threshold: float
    decisions: int
    routed: float | None
    precision: float | None


def team_threshold_table(
    labels: Sequence[str],
    y_true: NDArray[np.int64],
    proba: NDArray[np.float64],
    target_precision: float,
    fallback: float,
    targets: Mapping[str, float] | None = None,
) -> dict[str, TeamThreshold]:
    """Per team: the lowest threshold at which the tickets routed to it meet its precision target.

    A team's routed precision is measured on the tickets the model gives to that team, so a team
    often confused with another routes less. ``targets`` gives some teams their own target
    (``target_precision`` in teams.toml). A team held to the common target or a stricter one never
    goes below ``fallback`` (the threshold chosen for all teams together): out-of-fold decisions
    flatter the teams that are easy on written tickets, and a real stream is where they are
    confused. A team given a lower target of its own may go below it.
    """
    predicted = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    chosen: dict[str, TeamThreshold] = {}
    for index, label in enumerate(labels):
        target = (targets or {}).get(label, target_precision)
        mine = predicted == index
        count = int(mine.sum())
        if count < MIN_DECISIONS_FOR_TEAM_THRESHOLD:
            chosen[label] = TeamThreshold(target, fallback, count, None, None)
            continue
        rows = threshold_table(confidence[mine], (y_true[mine] == index), THRESHOLDS)
        threshold = choose_threshold(rows, target)
        if target >= target_precision:
            threshold = max(threshold, fallback)
        row = min(rows, key=lambda r: abs(r.threshold - threshold))
        chosen[label] = TeamThreshold(target, threshold, count, row.routed, row.precision)
    return chosen


def compute_metrics(labels: Sequence[str], y_true: NDArray[np.int64], proba: NDArray[np.float64]) -> Metrics:
    """Metrics of probability rows ``proba`` (columns in ``labels`` order) against true indices."""
    k = len(labels)
    y_pred = proba.argmax(axis=1) if proba.size else np.zeros(0, dtype=np.int64)
    confidence = proba.max(axis=1) if proba.size else np.zeros(0)
    correct = y_pred == y_true
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    scores = confusion_scores(labels, confusion)
    return Metrics(
        n=scores.n,
        accuracy=scores.accuracy,
        macro_f1=scores.macro_f1,
        ece=expected_calibration_error(confidence, correct),
        per_team=scores.per_team,
        confusion=confusion.tolist(),
        labels=list(labels),
        thresholds=threshold_table(confidence, correct),
        reliability=reliability_bins(confidence, correct),
    )


_LABEL_CHARS = 24
_AXES = ("true team", "predicted team")


class ConfusionLike(Protocol):
    """What a confusion picture shows: the matrix in ``labels`` order, accuracy and macro-F1."""

    @property
    def labels(self) -> list[str]: ...

    @property
    def confusion(self) -> list[list[int]]: ...

    @property
    def accuracy(self) -> float: ...

    @property
    def macro_f1(self) -> float: ...


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "\u2026"


def _figure(width: float, height: float) -> Any:
    # The object API, not pyplot: no global figure state, so threads may render at the same time.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def confusion_png(metrics: ConfusionLike, title: str = "Confusion matrix", axes: tuple[str, str] = _AXES) -> bytes:
    """The confusion matrix as a PNG (rows: ``axes[0]``, columns: ``axes[1]``)."""
    matrix = np.array(metrics.confusion)
    k = len(metrics.labels)
    labels = [_short(label) for label in metrics.labels]
    figure = _figure(min(1.2 * k + 3, 16), min(1.0 * k + 2.5, 14))
    ax = figure.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(k), labels, rotation=30, ha="right")
    ax.set_yticks(range(k), labels)
    ax.set_xlabel(axes[1])
    ax.set_ylabel(axes[0])
    ax.set_title(f"{title}\naccuracy {metrics.accuracy:.3f}, macro-F1 {metrics.macro_f1:.3f}")
    peak = matrix.max() if matrix.size else 0
    for i in range(k):
        for j in range(k):
            colour = "white" if peak and matrix[i, j] > peak / 2 else "black"
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color=colour)
    return _png(figure)


def reliability_png(metrics: Metrics, title: str = "Reliability") -> bytes:
    """The reliability diagram as a PNG: accuracy against mean confidence per bin, beside the diagonal."""
    figure = _figure(5.5, 5.0)
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#555555", label="perfect calibration")
    bins = metrics.reliability
    if bins:
        widths = [b.upper - b.lower for b in bins]
        ax.bar(
            [b.lower for b in bins],
            [b.accuracy for b in bins],
            width=widths,
            align="edge",
            color="#9ecae1",
            edgecolor="#08519c",
            label="accuracy in bin",
        )
        ax.plot(
            [b.confidence for b in bins],
            [b.accuracy for b in bins],
            marker="o",
            color="#08519c",
            label="each bin at its mean confidence",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("share right")
    ax.set_title(f"{title}\nECE {metrics.ece:.3f} over {metrics.n} tickets")
    ax.legend(loc="upper left")
    return _png(figure)


def plot_confusion(
    metrics: ConfusionLike, path: Path, title: str = "Confusion matrix", axes: tuple[str, str] = _AXES
) -> None:
    """Write the confusion matrix as a PNG file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(confusion_png(metrics, title, axes))


def evaluate_classifier(
    proba_of: Callable[[Sequence[tuple[str, str]]], NDArray[np.float64]],
    teams: Sequence[str],
    tickets: Sequence[tuple[str, str, str]],
) -> Metrics:
    """Metrics of a model on labelled ``(title, body, team)`` tickets (teams it does not know are left out)."""
    index = {team: i for i, team in enumerate(teams)}
    known = [(title, body, team) for title, body, team in tickets if team in index]
    proba = proba_of([(title, body) for title, body, _ in known]) if known else np.zeros((0, len(teams)))
    y_true = np.asarray([index[team] for _, _, team in known], dtype=np.int64)
    return compute_metrics(teams, y_true, proba)
