from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.dataset import LabelledTicket, load_examples
from model.errors import TrainingDataError
from model.inference import Classifier
from model.taxonomy import load_taxonomy, parse_taxonomy
from model.training import TrainingParams, train

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)

COLD_START_CASES = [
    ("The checkout button does nothing and the order total is wrong", "Development"),
    ("GitHub Actions pipeline fails during docker build", "DevOps"),
    ("Outage: 503 errors and p99 latency alert firing in production", "SRE"),
    ("Upgrade the shared Kubernetes cluster node pools and ingress controller", "Platform"),
    ("Write a terraform module to provision the staging environment", "DevOps"),
    ("Postmortem for the incident, with timeline and root cause", "SRE"),
    ("Add a Backstage golden path template for new services", "Platform"),
    ("Password reset email link is broken on the login page", "Development"),
]


def test_cold_start_trains_from_descriptions_alone() -> None:
    model = train(TAXONOMY, [])
    assert model.report.cold_start_teams == list(TAXONOMY.ids)
    assert model.report.cv is None
    classifier = Classifier(model.pipeline, model.teams, model.threshold, "cold")
    predicted = [classifier.decide(text).team for text, _ in COLD_START_CASES]
    assert predicted == [team for _, team in COLD_START_CASES]


def test_training_is_deterministic() -> None:
    first = train(TAXONOMY, MINI)
    second = train(TAXONOMY, MINI)
    clf1, clf2 = first.pipeline.named_steps["clf"], second.pipeline.named_steps["clf"]
    assert np.array_equal(clf1.coef_, clf2.coef_)
    assert np.array_equal(clf1.intercept_, clf2.intercept_)
    assert first.report.data_sha256 == second.report.data_sha256
    assert first.threshold == second.threshold
    assert first.report.temperature == second.report.temperature


def test_examples_dominate_descriptions_as_they_grow() -> None:
    # A team described as owning "widgets" whose examples are all about "gadgets".
    taxonomy = parse_taxonomy(
        """
[[teams]]
id = "A"
name = "A"
description = "Team A owns widgets."
[[teams]]
id = "B"
name = "B"
description = "Team B owns gadgets."
"""
    )
    examples = [LabelledTicket(title=f"gadgets problem {word}", body="", team="A") for word in "abcdefghijklmnop"]
    examples += [LabelledTicket(title=f"sprocket issue {word}", body="", team="B") for word in "abcdefghijklmnop"]
    cold = Classifier(*_parts(train(taxonomy, [])))
    warm = Classifier(*_parts(train(taxonomy, examples)))
    assert cold.decide("gadgets").team == "B"
    assert warm.decide("gadgets").team == "A"


def _parts(model):  # type: ignore[no-untyped-def]
    return model.pipeline, model.teams, model.threshold, "v"


def test_cross_validation_reports_calibrated_metrics_and_a_threshold() -> None:
    model = train(TAXONOMY, MINI, TrainingParams(folds=3, target_precision=0.8))
    cv = model.report.cv
    assert cv is not None
    assert model.report.folds == 3
    assert cv.n == len(MINI)
    assert set(cv.per_team) == set(TAXONOMY.ids)
    assert sum(map(sum, cv.confusion)) == len(MINI)
    assert 0.0 <= cv.ece <= 1.0
    assert model.report.temperature > 0
    assert model.threshold in {row.threshold for row in cv.thresholds}
    assert "cross-validation" in model.report.threshold_source


@pytest.mark.parametrize(
    ("params", "examples", "message"),
    [
        (TrainingParams(prior_weight=0.0), [], "no evidence for team"),
        (TrainingParams(prior_weight=0.0), [LabelledTicket("only devops here", "", "DevOps")], "no evidence"),
        (TrainingParams(), [LabelledTicket("x marks", "", "Marketing")], "outside the taxonomy"),
    ],
)
def test_unusable_data_is_refused(params: TrainingParams, examples: list[LabelledTicket], message: str) -> None:
    with pytest.raises(TrainingDataError, match=message):
        train(TAXONOMY, examples, params)


def test_a_team_with_no_words_in_its_description_has_no_evidence() -> None:
    taxonomy = parse_taxonomy(
        '[[teams]]\nid="A"\nname="A"\ndescription="Owns the billing pages."\n'
        '[[teams]]\nid="B"\nname="B"\ndescription="?!"\n'
    )
    with pytest.raises(TrainingDataError, match=r"\['B'\]"):
        train(taxonomy, [])
