"""Properties of the text and data parsers, checked on generated input (hypothesis)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.dataset import load_examples, parse_example_lines
from model.errors import Problem, TaxonomyError
from model.inference import Classifier
from model.taxonomy import Taxonomy, load_taxonomy, parse_taxonomy
from model.text import compose, normalise
from model.training import train

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)
MODEL = train(TAXONOMY, MINI)
CLASSIFIER = Classifier(MODEL.pipeline, MODEL.teams, MODEL.threshold, "props")
SKLEARN_ANALYZER = MODEL.pipeline.named_steps["tfidf"].build_analyzer()

# Ticket-like text: words from the vocabulary, identifiers, numbers, punctuation and any unicode.
VOCABULARY = sorted({w for t in MINI for w in t.text.split()})
words = st.sampled_from(VOCABULARY) | st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,12}", fullmatch=True)
ticket_text = st.lists(words | st.text(max_size=12) | st.from_regex(r"\d{1,5}", fullmatch=True), max_size=40).map(
    " ".join
) | st.text(max_size=300)
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(ticket_text)
def test_fast_features_equal_scikit_learn_features(text: str) -> None:
    assert Counter(CLASSIFIER._grams(text)) == Counter(SKLEARN_ANALYZER(text))


@SETTINGS
@given(ticket_text, ticket_text)
def test_decisions_are_well_formed_and_equal_to_predict_proba(title: str, body: str) -> None:
    decision = CLASSIFIER.decide(title, body)
    scores = np.array(list(decision.scores.values()))
    assert list(decision.scores) == list(TAXONOMY.ids)
    assert scores.sum() == pytest.approx(1.0)
    assert decision.team == max(decision.scores, key=decision.scores.__getitem__)
    assert 0.0 <= decision.confidence <= 1.0
    no_evidence = MODEL.pipeline.named_steps["tfidf"].transform([compose(title, body)]).nnz == 0
    assert decision.abstained == (no_evidence or decision.confidence < CLASSIFIER.threshold)
    expected = MODEL.pipeline.predict_proba([compose(title, body)])[0]
    assert np.abs(scores - expected).max() < 1e-12
    assert all(t.weight > 0 for t in decision.explanation)


@SETTINGS
@given(st.text(max_size=500))
def test_normalise_lowercases_and_splits_identifiers(text: str) -> None:
    normal = normalise(text)
    assert "_" not in normal
    assert normal == normal.lower()


@SETTINGS
@given(st.lists(st.binary(max_size=200) | st.text(max_size=200).map(str.encode), max_size=20))
def test_example_parser_accounts_for_every_line_and_never_raises(lines: list[bytes]) -> None:
    joined = b"\n".join(line.replace(b"\n", b" ") for line in lines).splitlines()
    problems: list[Problem] = []
    tickets = list(parse_example_lines(joined, "generated.jsonl", TAXONOMY, problems))
    blank = sum(1 for line in joined if not line.strip())
    assert len(tickets) + len(problems) == len(joined) - blank
    assert all(p.path == "generated.jsonl" and 1 <= p.line <= len(joined) for p in problems)


@SETTINGS
@given(st.text(max_size=400))
def test_taxonomy_parser_fails_only_with_a_taxonomy_error(text: str) -> None:
    try:
        taxonomy = parse_taxonomy(text, "teams.toml")
    except TaxonomyError as exc:
        assert str(exc).startswith("teams.toml")
    else:
        assert isinstance(taxonomy, Taxonomy) and len(taxonomy.teams) >= 2
