"""Where a decision's explanation occurs in the ticket: the words to highlight for a person.

The explanation names features (``latency``, ``p99 latency``) after the vectorizer's
preprocessing: identifiers split into words, lowercase, stop words and one-character tokens
dropped, word pairs formed from what is left. This maps them back onto the ticket as it was
written, run of word characters by run, so ``CrashLoopBackOff`` lights up for ``crash``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import msgspec

from model.decision import Term
from model.pipeline import STOP_WORDS
from model.text import normalise

__all__ = ["Segment", "highlight"]

_RUN = re.compile(r"\w+")


class Segment(msgspec.Struct, frozen=True):
    """A piece of the text; ``weight`` is set when an explanation term points at it."""

    text: str
    weight: float | None = None


def _kept(word: str) -> bool:
    """The vectorizer's token rule: two or more characters, not only digits unless exactly three."""
    return word not in STOP_WORDS and (len(word) == 3 or (len(word) > 1 and not word.isdecimal()))


def highlight(text: str, terms: Sequence[Term]) -> list[Segment]:
    """``text`` cut into segments, the runs of word characters that explanation ``terms`` name carrying a weight."""
    single = {t.term: t.weight for t in terms if " " not in t.term}
    pairs = {tuple(t.term.split(" ", 1)): t.weight for t in terms if " " in t.term}
    runs = list(_RUN.finditer(text))
    stream = [(word, index) for index, run in enumerate(runs) for word in normalise(run.group()).split() if _kept(word)]
    weights: dict[int, float] = {}

    def mark(index: int, weight: float) -> None:
        weights[index] = max(weights.get(index, weight), weight)

    for word, index in stream:
        if word in single:
            mark(index, single[word])
    for (first, i), (second, j) in pairwise(stream):
        weight = pairs.get((first, second))
        if weight is not None:
            mark(i, weight)
            mark(j, weight)
    segments: list[Segment] = []
    done = 0
    for index, run in enumerate(runs):
        if index not in weights:
            continue
        if run.start() > done:
            segments.append(Segment(text[done : run.start()]))
        segments.append(Segment(run.group(), weights[index]))
        done = run.end()
    if done < len(text) or not segments:
        segments.append(Segment(text[done:]))
    return segments
