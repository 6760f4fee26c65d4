from __future__ import annotations

from model.decision import Term
from model.highlight import Segment, highlight


def test_terms_light_up_the_words_as_written() -> None:
    terms = [Term("latency", 2.0), Term("p99 latency", 0.8), Term("crash", 0.5)]
    segments = highlight("The p99 Latency of the CrashLoopBackOff pod", terms)
    assert segments == [
        Segment("The "),
        Segment("p99", 0.8),
        Segment(" "),
        Segment("Latency", 2.0),
        Segment(" of the "),
        Segment("CrashLoopBackOff", 0.5),
        Segment(" pod"),
    ]
    assert "".join(s.text for s in segments) == "The p99 Latency of the CrashLoopBackOff pod"


def test_word_pairs_skip_stop_words_as_the_vectorizer_does() -> None:
    # "of the" are stop words: the model's pair is "latency checkout".
    segments = highlight("latency of the checkout", [Term("latency checkout", 1.0)])
    assert [s.text for s in segments if s.weight] == ["latency", "checkout"]


def test_text_without_terms_is_one_plain_segment() -> None:
    assert highlight("<script>alert(1)</script>", []) == [Segment("<script>alert(1)</script>")]
    assert highlight("", [Term("x", 1.0)]) == [Segment("")]
