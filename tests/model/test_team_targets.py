"""Per-team precision targets: a team with a stricter target gets a higher threshold, measured out of fold."""

from __future__ import annotations

import numpy as np
import pytest

from model.evaluation import MIN_DECISIONS_FOR_TEAM_THRESHOLD, team_threshold_table
from model.taxonomy import parse_taxonomy

LABELS = ("A", "B")


def decisions() -> tuple[np.ndarray, np.ndarray]:
    """Team A's tickets: right at high confidence, a third wrong at low confidence; B likewise."""
    rows, truth = [], []
    for index in (0, 1):
        for n in range(60):
            confident = n < 40
            confidence = 0.95 if confident else 0.55
            row = [0.0, 0.0]
            row[index], row[1 - index] = confidence, 1 - confidence
            rows.append(row)
            truth.append(index if confident or n % 2 else 1 - index)
    return np.array(rows), np.array(truth)


def test_a_stricter_team_target_raises_only_that_teams_threshold() -> None:
    proba, y = decisions()
    table = team_threshold_table(LABELS, y, proba, target_precision=0.8, fallback=0.5, targets={"A": 0.99})
    assert (table["A"].target, table["B"].target) == (0.99, 0.8)
    assert table["A"].threshold > table["B"].threshold
    assert table["A"].precision == 1.0 and table["A"].routed == pytest.approx(40 / 60)
    # B meets its target at any threshold, but never goes below the one chosen for all teams together.
    assert table["B"].threshold == 0.5 and table["B"].precision == pytest.approx(50 / 60)
    lenient = team_threshold_table(LABELS, y, proba, target_precision=0.8, fallback=0.5, targets={"B": 0.5})
    assert lenient["B"].threshold == 0.0, "a team given a lower target of its own may go below it"


def test_a_team_with_too_few_decisions_keeps_the_fallback() -> None:
    proba, y = decisions()
    few = MIN_DECISIONS_FOR_TEAM_THRESHOLD - 1
    table = team_threshold_table(LABELS, y[:few], proba[:few], 0.8, 0.42, {"A": 0.99})
    assert (table["A"].threshold, table["A"].precision, table["A"].decisions) == (0.42, None, few)


def test_teams_toml_takes_a_target_and_refuses_one_out_of_range() -> None:
    text = '[[teams]]\nid = "A"\nname = "A"\ndescription = "a"\ntarget_precision = 0.95\n'
    text += '[[teams]]\nid = "B"\nname = "B"\ndescription = "b"\n'
    assert parse_taxonomy(text).targets() == {"A": 0.95}
    with pytest.raises(Exception, match="target_precision"):
        parse_taxonomy(text.replace("0.95", "1.5"))
