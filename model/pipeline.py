"""The scikit-learn pipeline: TF-IDF word n-grams feeding a multinomial logistic regression."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import msgspec
import numpy as np
from msgspec import Meta
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from model.text import normalise_versions

__all__ = ["PipelineParams", "build_pipeline"]

# Tokens are words of two or more characters that contain a letter, plus three-digit
# numbers (HTTP statuses such as 502 are strong evidence); other numbers are noise.
TOKEN_PATTERN = r"(?u)\b(?:[^\W\d]\w+|\d+[^\W\d]\w*|\d{3})\b"  # noqa: S105 - a regex, not a secret


# Function words only. scikit-learn's English list is not used: it drops words such as
# "down", "back", "up" and "fill" that are evidence in tickets ("site is down").
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "again",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "ours",
        "she",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "us",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
    ]
)


class PipelineParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Hyper-parameters of the pipeline; stored in every manifest."""

    ngram_max: Annotated[int, Meta(ge=1, le=3)] = 2
    # Example terms must occur in this many examples; the taxonomy's own terms always count.
    min_df: Annotated[int, Meta(ge=1)] = 2
    max_df: Annotated[float, Meta(gt=0.0, le=1.0)] = 1.0
    sublinear_tf: bool = True
    C: Annotated[float, Meta(gt=0.0)] = 3.0
    balanced: bool = True
    max_iter: Annotated[int, Meta(ge=100)] = 5000


def build_pipeline(params: PipelineParams, vocabulary: Sequence[str] | None = None) -> Pipeline:
    """An unfitted pipeline; fitting it on the same data always gives the same model.

    With ``vocabulary``, exactly those terms are features and ``min_df`` is not applied again.
    """
    vectorizer = TfidfVectorizer(
        vocabulary={term: i for i, term in enumerate(vocabulary)} if vocabulary is not None else None,
        preprocessor=normalise_versions,
        token_pattern=TOKEN_PATTERN,
        ngram_range=(1, params.ngram_max),
        min_df=1 if vocabulary is not None else params.min_df,
        max_df=1.0 if vocabulary is not None else params.max_df,
        sublinear_tf=params.sublinear_tf,
        stop_words=sorted(STOP_WORDS),
        dtype=np.float64,
    )
    classifier = LogisticRegression(
        C=params.C,
        class_weight="balanced" if params.balanced else None,
        max_iter=params.max_iter,
        solver="lbfgs",
    )
    return Pipeline([("tfidf", vectorizer), ("clf", classifier)])
