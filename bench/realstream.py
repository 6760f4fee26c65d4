"""The real-stream benchmark: public issues and pull requests taken as they come, labelled twice.

``bench/real_stream/items.jsonl`` lists each ticket's address, repository, kind of repository
and split (``dev`` for every choice we make, ``test`` only for reporting); ``labels_a.jsonl`` and
``labels_b.jsonl`` hold two independent labellings by docs/TAXONOMY.md. The texts belong to
their authors and are not committed: ``python -m bench.fetch_public real_stream`` fetches them
into ``texts.jsonl``. Labeller A is the reference; labeller B measures the ceiling.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import msgspec
import numpy as np
from numpy.typing import NDArray

from bench.common import ROOT
from model.decision import Decision
from model.evaluation import Metrics, compute_metrics, expected_calibration_error

__all__ = [
    "HERE",
    "StreamReport",
    "StreamTicket",
    "agreement",
    "ece_noise_floor",
    "evaluate",
    "load",
    "plot_coverage",
    "plot_reliability",
]

HERE = ROOT / "bench" / "real_stream"
TEAMS = ("Development", "DevOps", "SRE", "Platform")
Split = Literal["dev", "test"]


class Item(msgspec.Struct, frozen=True):
    """Where a ticket is, what kind of repository holds it, and which part of the benchmark it is in."""

    id: str
    url: str
    repo: str
    type: str
    kind: str = ""
    split: str = ""
    date: str = ""


class Label(msgspec.Struct, frozen=True):
    """One labeller's verdict: the team (None: no evidence at all), a defensible second team, and why."""

    id: str
    team: str | None
    alt: str | None = None
    sure: bool = True
    rationale: str = ""


class Text(msgspec.Struct, frozen=True):
    """A ticket's title and first post."""

    id: str
    title: str
    body: str = ""


@dataclass(frozen=True)
class StreamTicket:
    """A ticket with its text and both labellings."""

    item: Item
    title: str
    body: str
    a: Label
    b: Label | None


T = TypeVar("T")


def _read(path: Path, kind: type[T]) -> list[T]:
    if not path.exists():
        return []
    decoder = msgspec.json.Decoder(kind)
    return [decoder.decode(line) for line in path.read_bytes().splitlines() if line.strip()]


def load(split: Split | None = None, folder: Path = HERE) -> list[StreamTicket]:
    """The labelled tickets whose texts have been fetched, optionally one split only."""
    texts = {t.id: t for t in _read(folder / "texts.jsonl", Text)}
    a = {label.id: label for label in _read(folder / "labels_a.jsonl", Label)}
    b = {label.id: label for label in _read(folder / "labels_b.jsonl", Label)}
    tickets = []
    for item in _read(folder / "items.jsonl", Item):
        if split is not None and item.split != split:
            continue
        text, label = texts.get(item.id), a.get(item.id)
        if text is None or label is None:
            continue
        tickets.append(StreamTicket(item, text.title, text.body, label, b.get(item.id)))
    return tickets


class Agreement(msgspec.Struct, frozen=True):
    """How the second labeller agrees with the first: the ceiling of any router on this set."""

    compared: int
    accuracy: float
    macro_f1: float
    team_or_alt: float
    both_null: int
    one_null: int
    sure_share: float
    sure_accuracy: float


def agreement(tickets: Sequence[StreamTicket]) -> Agreement | None:
    """Labeller B against labeller A on the tickets both gave a team."""
    pairs = [(t.a, t.b) for t in tickets if t.b is not None]
    if not pairs:
        return None
    both = [(a, b) for a, b in pairs if a.team is not None and b.team is not None]
    if not both:
        return None
    y = np.array([TEAMS.index(a.team) for a, _ in both if a.team is not None])
    proba = np.zeros((len(both), len(TEAMS)))
    for row, (_, b) in enumerate(both):
        assert b.team is not None
        proba[row, TEAMS.index(b.team)] = 1.0
    metrics = compute_metrics(TEAMS, y, proba)
    sure = [(a, b) for a, b in both if a.sure]
    return Agreement(
        compared=len(both),
        accuracy=metrics.accuracy,
        macro_f1=metrics.macro_f1,
        team_or_alt=float(np.mean([b.team in (a.team, a.alt) for a, b in both])),
        both_null=sum(1 for a, b in pairs if a.team is None and b.team is None),
        one_null=sum(1 for a, b in pairs if (a.team is None) != (b.team is None)),
        sure_share=len(sure) / len(both),
        sure_accuracy=float(np.mean([a.team == b.team for a, b in sure])) if sure else 0.0,
    )


class StreamReport(msgspec.Struct, frozen=True):
    """A router on a real stream: the usual metrics plus what matters on other people's tickets."""

    metrics: Metrics
    team_or_alt: float
    routed_share: float
    routed_precision: float | None
    routed_team_or_alt: float | None
    confident: int  # decisions at confidence >= 0.9
    confident_right: float | None
    null_tickets: int
    null_abstained: float | None
    by_kind: dict[str, float]
    # Per team the router decided for: how many it routed (of how many it decided), and their precision.
    routed_by_team: dict[str, tuple[int, int, float | None]]
    sure_accuracy: float | None
    unsure_accuracy: float | None
    # The median ECE a perfectly calibrated router with these very confidences would show on this
    # many tickets: below it, a measured ECE is sampling noise rather than miscalibration.
    ece_floor: float = 0.0


Decide = Callable[[Sequence[tuple[str | None, str | None, str | None]]], list[Decision]]


def evaluate(decide: Decide, tickets: Sequence[StreamTicket]) -> StreamReport:
    """Decide every ticket and compare with labeller A (tickets without a team measure abstention only)."""
    decisions = decide([(t.item.id, t.title, t.body) for t in tickets])
    labelled = [(t, d) for t, d in zip(tickets, decisions, strict=True) if t.a.team is not None]
    nulls = [d for t, d in zip(tickets, decisions, strict=True) if t.a.team is None]
    y = np.array([TEAMS.index(t.a.team) for t, _ in labelled if t.a.team is not None], dtype=np.int64)
    proba = np.array([[d.scores[team] for team in TEAMS] for _, d in labelled]).reshape(-1, len(TEAMS))
    metrics = compute_metrics(TEAMS, y, proba)
    right = np.array([d.team == t.a.team for t, d in labelled])
    defensible = np.array([d.team in (t.a.team, t.a.alt) for t, d in labelled])
    routed = np.array([not d.abstained for _, d in labelled])
    confident = np.array([d.confidence >= 0.9 for _, d in labelled])
    kinds: Counter[str] = Counter()
    kind_right: Counter[str] = Counter()
    for (t, _), ok in zip(labelled, right, strict=True):
        kinds[t.item.kind] += 1
        kind_right[t.item.kind] += int(ok)
    sure = np.array([t.a.sure for t, _ in labelled])
    routed_by_team: dict[str, tuple[int, int, float | None]] = {}
    for team in TEAMS:
        mine = np.array([d.team == team for _, d in labelled], dtype=bool)
        sent = mine & routed
        precision = float(right[sent].mean()) if sent.any() else None
        routed_by_team[team] = (int(sent.sum()), int(mine.sum()), precision)
    return StreamReport(
        metrics=metrics,
        team_or_alt=float(defensible.mean()) if labelled else 0.0,
        routed_share=float(routed.mean()) if labelled else 0.0,
        routed_precision=float(right[routed].mean()) if routed.any() else None,
        routed_team_or_alt=float(defensible[routed].mean()) if routed.any() else None,
        confident=int(confident.sum()),
        confident_right=float(right[confident].mean()) if confident.any() else None,
        null_tickets=len(nulls),
        null_abstained=float(np.mean([d.abstained for d in nulls])) if nulls else None,
        by_kind={kind: kind_right[kind] / count for kind, count in sorted(kinds.items())},
        routed_by_team=routed_by_team,
        sure_accuracy=float(right[sure].mean()) if sure.any() else None,
        unsure_accuracy=float(right[~sure].mean()) if (~sure).any() else None,
        ece_floor=ece_noise_floor(np.array([d.confidence for _, d in labelled])),
    )


def ece_noise_floor(confidence: NDArray[np.float64], draws: int = 2000, seed: int = 0) -> float:
    """The median ECE of a perfectly calibrated router: each ticket right with probability its confidence.

    ECE over ten bins is biased upwards on small sets (each bin's accuracy is a sample), so on a
    couple of hundred tickets even a perfect router measures 0.05-0.08.
    """
    if confidence.size == 0:
        return 0.0
    rng = np.random.default_rng(seed)
    simulated = [expected_calibration_error(confidence, rng.random(confidence.size) < confidence) for _ in range(draws)]
    return float(np.median(simulated))


def reliability(
    confidence: NDArray[np.float64], correct: NDArray[np.bool_], bins: int = 10
) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per equal-width confidence bin with tickets in it."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    return [
        (float(confidence[index == b].mean()), float(correct[index == b].mean()), int((index == b).sum()))
        for b in range(bins)
        if (index == b).any()
    ]


def plot_reliability(curves: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]], path: Path) -> None:
    """A reliability diagram: accuracy against confidence per bin, one line per named set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for name, (confidence, correct) in curves.items():
        points = reliability(confidence, correct)
        ece = expected_calibration_error(confidence, correct)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set_xlabel("confidence")
    ax.set_ylabel("share right")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title("Reliability on real streams")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def coverage_curve(confidence: NDArray[np.float64], correct: NDArray[np.bool_]) -> list[tuple[float, float, float]]:
    """(threshold, routed share, routed precision) for thresholds from 0 to 0.95."""
    rows = []
    for threshold in np.arange(0.0, 0.96, 0.05):
        routed = confidence >= threshold
        if routed.any():
            rows.append((float(threshold), float(routed.mean()), float(correct[routed].mean())))
    return rows


def plot_coverage(curves: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]], path: Path) -> None:
    """Routed precision against the share of tickets routed, as the abstain threshold moves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    for name, (confidence, correct) in curves.items():
        rows = coverage_curve(confidence, correct)
        ax.plot([r[1] for r in rows], [r[2] for r in rows], marker=".", label=name)
    ax.axhline(0.9, color="grey", linestyle="--", linewidth=1, label="target precision 0.9")
    ax.set_xlabel("share of tickets routed (the rest go to triage)")
    ax.set_ylabel("precision of routed tickets")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0.4, 1.0)
    ax.set_title("Routed precision and coverage on real streams")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
