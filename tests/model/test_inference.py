from __future__ import annotations

import random
import string
from pathlib import Path

import numpy as np
import pytest

from model.dataset import LabelledTicket, load_examples
from model.inference import Classifier
from model.taxonomy import load_taxonomy, parse_taxonomy
from model.text import compose
from model.training import train

ROOT = Path(__file__).resolve().parents[2]
TAXONOMY = load_taxonomy(ROOT / "training_data")
MINI = load_examples([ROOT / "tests" / "fixtures" / "mini_examples.jsonl"], TAXONOMY)


@pytest.fixture(scope="module")
def classifier() -> Classifier:
    model = train(TAXONOMY, MINI)
    return Classifier(model.pipeline, model.teams, model.threshold, "test-version", max_chars=5000)


def _tickets() -> list[tuple[str, str]]:
    rng = random.Random(7)
    words = [w for t in MINI for w in t.text.split()] + ["CrashLoopBackOff", "http_requests_total", "502", "p99"]
    tickets = [(t.title, t.body) for t in MINI]
    for _ in range(300):
        title = " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
        body = " ".join(rng.choice(words) for _ in range(rng.randint(0, 60)))
        tickets.append((title, body))
    tickets.append(("".join(rng.choice(string.printable) for _ in range(400)), ""))
    tickets.append(("zzzz qqqq", "nothing the model knows"))
    return tickets


def test_fast_path_reproduces_predict_proba(classifier: Classifier) -> None:
    tickets = _tickets()
    expected = classifier.pipeline.predict_proba([compose(t, b) for t, b in tickets])
    fast = np.vstack([classifier.proba(compose(t, b)) for t, b in tickets])
    assert np.abs(fast - expected).max() < 1e-12


def test_batch_path_equals_single_decisions(classifier: Classifier) -> None:
    tickets = _tickets()
    many = classifier.decide_many([(str(i), t, b) for i, (t, b) in enumerate(tickets)])
    for i, ((title, body), decision) in enumerate(zip(tickets, many, strict=True)):
        single = classifier.decide(title, body, item_id=str(i))
        assert decision.team == single.team
        assert decision.id == str(i)
        assert decision.scores == pytest.approx(single.scores, abs=1e-12)
        assert decision.explanation == single.explanation


def test_decision_object(classifier: Classifier) -> None:
    decision = classifier.decide("Pods OOMKilled in production", "memory limit too low, alert firing")
    assert decision.team == "SRE"
    assert set(decision.scores) == set(TAXONOMY.ids)
    assert sum(decision.scores.values()) == pytest.approx(1.0)
    assert decision.confidence == max(decision.scores.values()) == decision.scores["SRE"]
    assert decision.abstained is (decision.confidence < classifier.team_thresholds[TAXONOMY.ids.index("SRE")])
    assert decision.model_version == "test-version"
    assert decision.explanation, "the decision names the terms that pushed it"
    text = "pods oomkilled in production memory limit too low alert firing"
    for term in decision.explanation:
        assert all(word in text for word in term.term.split())
        assert term.weight > 0
    assert [t.weight for t in decision.explanation] == sorted((t.weight for t in decision.explanation), reverse=True)


def test_title_and_body_both_count(classifier: Classifier) -> None:
    title_only = classifier.decide("Question about the service")
    with_body = classifier.decide("Question about the service", "the terraform plan fails in the deploy pipeline")
    assert title_only.scores != with_body.scores
    assert with_body.team == "DevOps"


def test_long_texts_are_truncated_and_flagged(classifier: Classifier) -> None:
    decision = classifier.decide("Outage", "error " * 5000)
    assert decision.truncated is True
    assert classifier.decide("Outage", "error").truncated is False


def test_two_team_taxonomy() -> None:
    taxonomy = parse_taxonomy(
        '[[teams]]\nid="Web"\nname="Web"\ndescription="Owns the website pages, buttons and forms."\n'
        '[[teams]]\nid="Data"\nname="Data"\ndescription="Owns the warehouse, ETL jobs and analytics dashboards."\n'
    )
    examples = [LabelledTicket("Signup button misaligned", "", "Web"), LabelledTicket("ETL job late", "", "Data")]
    model = train(taxonomy, examples)
    classifier = Classifier(model.pipeline, model.teams, model.threshold, "v")
    decision = classifier.decide("The nightly ETL job into the warehouse failed")
    assert decision.team == "Data"
    assert list(decision.scores) == ["Web", "Data"]
    expected = model.pipeline.predict_proba([compose("The nightly ETL job into the warehouse failed", "")])[0]
    assert (
        np.abs(classifier.proba(compose("The nightly ETL job into the warehouse failed", "")) - expected).max() < 1e-12
    )


@pytest.mark.parametrize("text", ["???", "k", "", "— … —", "zzqx wqpv"])
def test_a_ticket_without_evidence_always_abstains(text: str) -> None:
    model = train(TAXONOMY, MINI)
    lenient = Classifier(model.pipeline, model.teams, 0.0, "v")  # a threshold that routes everything
    assert lenient.decide(text, "").abstained
    assert lenient.decide_many([(None, text, "")])[0].abstained
    assert not lenient.decide("Pods OOMKilled in production", "").abstained


def test_team_thresholds_decide_each_team_separately() -> None:
    model = train(TAXONOMY, MINI)
    strict_sre = {team: (1.0 if team == "SRE" else 0.0) for team in TAXONOMY.ids}
    classifier = Classifier(model.pipeline, model.teams, 0.5, "v", team_thresholds=strict_sre)
    sre = classifier.decide("Pods OOMKilled in production", "memory limit too low, alert firing")
    dev = classifier.decide("The checkout button does nothing", "the order total is wrong on the cart page")
    assert (sre.team, sre.abstained) == ("SRE", True)
    assert (dev.team, dev.abstained) == ("Development", False)
    assert [d.abstained for d in classifier.decide_many([(None, "Pods OOMKilled in production", "")])] == [True]


def test_the_repository_is_evidence_on_both_paths() -> None:
    model = train(TAXONOMY, MINI)
    classifier = Classifier(model.pipeline, model.teams, 0.5, "v")
    alone = classifier.decide("Update README.md")
    placed = classifier.decide("Update README.md", repository="acme/terraform-pipelines")
    assert placed.scores != alone.scores
    [batch] = classifier.decide_many([(None, "Update README.md", None, "acme/terraform-pipelines")])
    assert batch.scores == pytest.approx(placed.scores)
    assert classifier.decide("", repository="acme/x").abstained, "a repository alone is no ticket"


def test_version_numbers_are_one_word() -> None:
    from model.text import normalise_versions

    assert normalise_versions("Prepare v0.5.1").split() == normalise_versions("prepare 2.14.0-rc.1").split()
    assert "semver" not in normalise_versions("HTTP 502 at 14:05")


def test_web_addresses_are_one_word() -> None:
    from model.text import normalise_versions

    cherry = normalise_versions("Cherry pick of https://github.com/kubernetes-sigs/metrics-server/pull/484")
    assert cherry.split() == ["cherry", "pick", "of", "hyperlink"]
    linked = normalise_versions("see (http://ci.example.org/job/12?x=1) and docs")
    assert linked.split() == ["see", "(", "hyperlink", ")", "and", "docs"]
    assert normalise_versions("the callback url is wrong").split() == ["the", "callback", "url", "is", "wrong"]


def test_web_addresses_read_alike_on_both_paths() -> None:
    model = train(TAXONOMY, MINI)
    classifier = Classifier(model.pipeline, model.teams, 0.5, "v")
    one = classifier.decide("Cherry pick of https://github.com/acme/terraform-pipelines/pull/1")
    other = classifier.decide("Cherry pick of https://example.org/ingress")
    assert one.scores == pytest.approx(other.scores)
    [batch] = classifier.decide_many([(None, "Cherry pick of https://example.org/ingress", None, None)])
    assert batch.scores == pytest.approx(one.scores)


def test_evidence_shrink_tempers_short_tickets_on_both_paths() -> None:
    from scipy.special import softmax

    from model.training import logits_and_evidence

    model = train(TAXONOMY, MINI)
    plain = Classifier(model.pipeline, model.teams, 0.0, "v")
    tempered = Classifier(model.pipeline, model.teams, 0.0, "v", evidence_shrink=10.0)
    tickets = [("fix", ""), ("Pods OOMKilled in production", "memory limit too low, alert firing, p99 latency up")]
    logits, evidence = logits_and_evidence(model.pipeline, [compose(t, b) for t, b in tickets], len(model.teams))
    expected = softmax(logits * (evidence / (evidence + 10.0))[:, None], axis=1)
    single = np.array([list(tempered.decide(t, b).scores.values()) for t, b in tickets])
    batch = np.array([list(d.scores.values()) for d in tempered.decide_many([(None, t, b) for t, b in tickets])])
    assert np.abs(single - expected).max() < 1e-9
    assert np.abs(batch - expected).max() < 1e-9
    short_plain, short_tempered = plain.decide("fix").confidence, tempered.decide("fix").confidence
    assert short_tempered < short_plain, "one known word is not much evidence"
