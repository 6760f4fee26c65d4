"""Inference: the fitted pipeline's arithmetic, without scikit-learn's per-call overhead.

A decision abstains when its confidence is under its team's threshold, and always when the
ticket has no evidence at all (not one of its words or word pairs is in the vocabulary: an
empty template, ``???``, a lone character), whatever the scores say.

``Classifier.decide`` reproduces ``pipeline.predict_proba`` for one ticket (same tokens,
vocabulary, idf, coefficients and softmax) in a fraction of its time; ``decide_many`` counts a
whole batch's features in numpy and beats ``predict_proba`` on the same batch. Tests hold both
paths equal to scikit-learn over many tickets.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from itertools import pairwise, repeat

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline

from model.decision import Decision, Term
from model.pipeline import TOKEN_PATTERN
from model.text import model_text

__all__ = ["Classifier", "TicketInput"]

# (id, title, body) or (id, title, body, repository): what decide_many takes for each ticket.
TicketInput = tuple[str | None, str | None, str | None] | tuple[str | None, str | None, str | None, str | None]

EXPLAIN_TERMS = 5
_NO_INDICES: NDArray[np.intp] = np.zeros(0, dtype=np.intp)
_NO_VALUES: NDArray[np.float64] = np.zeros(0)


class _SparseBatch:
    """CSR parts of a batch's TF-IDF matrix, with each entry's row number."""

    __slots__ = ("data", "indices", "indptr", "n_features", "rows")

    def __init__(
        self,
        data: NDArray[np.float64],
        indices: NDArray[np.intp],
        indptr: NDArray[np.intp],
        rows: NDArray[np.intp],
        n_features: int,
    ) -> None:
        self.data, self.indices, self.indptr, self.rows, self.n_features = data, indices, indptr, rows, n_features

    def matrix(self) -> csr_matrix:
        """The batch as a scipy CSR matrix."""
        return csr_matrix((self.data, self.indices, self.indptr), shape=(len(self.indptr) - 1, self.n_features))


_WORD_RUNS = re.compile(r"\w+")


def _token_function(tfidf: TfidfVectorizer) -> Callable[[str], list[str]]:
    """Preprocess, tokenise and drop stop words exactly as the vectorizer does, but faster.

    ``TOKEN_PATTERN`` only ever matches whole runs of word characters, so it equals taking
    every ``\\w+`` run of two or more characters that is not all digits, or of exactly three.
    """
    preprocess: Callable[[str], str] = tfidf.preprocessor
    stop = frozenset(tfidf.get_stop_words() or ())
    if tfidf.token_pattern == TOKEN_PATTERN:
        runs = _WORD_RUNS.findall

        def tokens(text: str) -> list[str]:
            return [
                w
                for w in runs(preprocess(text))
                if w not in stop and (len(w) == 3 or (len(w) > 1 and not w.isdecimal()))
            ]

        return tokens
    findall = re.compile(tfidf.token_pattern).findall

    def pattern_tokens(text: str) -> list[str]:
        return [w for w in findall(preprocess(text)) if w not in stop]

    return pattern_tokens


def _supported(tfidf: TfidfVectorizer) -> bool:
    """Whether the vectorizer is the word n-gram kind the fast paths reproduce."""
    return (
        tfidf.analyzer == "word"
        and tfidf.tokenizer is None
        and tfidf.preprocessor is not None
        and tfidf.strip_accents is None
        and tfidf.input == "content"
        and tfidf.ngram_range[0] == 1
        and tfidf.ngram_range[1] in (1, 2)
        and tfidf.norm == "l2"
        and tfidf.use_idf
    )


class _TokenIds:
    """Integer ids for the vocabulary's tokens: a bigram feature is looked up as a pair of ids."""

    def __init__(self, vocabulary: dict[str, int]) -> None:
        self.token_ids: dict[str, int] = {}
        unigram: list[int] = []
        pairs: list[tuple[str, str, int]] = []
        for term, index in vocabulary.items():
            if " " in term:
                first, second = term.split(" ")
                pairs.append((first, second, index))
            else:
                self.token_ids[term] = len(unigram)
                unigram.append(index)
        # A token seen only inside bigrams gets an id without a unigram feature (-1).
        for first, second, _ in pairs:
            for token in (first, second):
                if token not in self.token_ids:
                    self.token_ids[token] = len(unigram)
                    unigram.append(-1)
        self.count = len(unigram)
        self.unigram: NDArray[np.int64] = np.array(unigram, dtype=np.int64)
        codes = np.array([self.token_ids[a] * self.count + self.token_ids[b] for a, b, _ in pairs], dtype=np.int64)
        by_code = np.argsort(codes)
        self.codes: NDArray[np.int64] = codes[by_code]
        self.bigram: NDArray[np.int64] = np.array([i for _, _, i in pairs], dtype=np.int64)[by_code]


class Classifier:
    """An immutable, thread-safe decision function built from a fitted, calibrated pipeline."""

    __slots__ = (
        "_advantage",
        "_bigram_codes",
        "_bigram_feature",
        "_bigrams",
        "_id_count",
        "_idf",
        "_intercept",
        "_names",
        "_shrink",
        "_sublinear",
        "_token_ids",
        "_tokens",
        "_unigram_feature",
        "_vocabulary",
        "_weights",
        "max_chars",
        "pipeline",
        "team_thresholds",
        "teams",
        "threshold",
        "version",
    )

    def __init__(
        self,
        pipeline: Pipeline,
        teams: Sequence[str],
        threshold: float,
        version: str,
        max_chars: int = 20_000,
        team_thresholds: Mapping[str, float] | None = None,
        evidence_shrink: float = 0.0,
    ) -> None:
        self.pipeline = pipeline
        self.teams = tuple(teams)
        self.threshold = threshold
        # Per team, in taxonomy order; a team without its own uses ``threshold``.
        chosen = team_thresholds or {}
        self.team_thresholds: tuple[float, ...] = tuple(chosen.get(team, threshold) for team in self.teams)
        # Logits of a ticket with n known features are scaled by n / (n + shrink) (see training).
        self._shrink = evidence_shrink
        self.version = version
        self.max_chars = max_chars
        tfidf = pipeline.named_steps["tfidf"]
        clf = pipeline.named_steps["clf"]
        if not _supported(tfidf):
            raise ValueError("the fast paths reproduce word uni/bigram, l2-normalised TF-IDF only")
        self._tokens = _token_function(tfidf)
        self._bigrams: bool = tfidf.ngram_range[1] == 2
        self._vocabulary: dict[str, int] = tfidf.vocabulary_
        self._idf: NDArray[np.float64] = np.asarray(tfidf.idf_, dtype=np.float64)
        self._sublinear: bool = bool(tfidf.sublinear_tf)
        coef = np.asarray(clf.coef_, dtype=np.float64)
        intercept = np.asarray(clf.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            # Binary logistic regression: sigmoid(z) == softmax([-z/2, z/2])[1].
            coef = np.vstack([-coef[0] / 2.0, coef[0] / 2.0])
            intercept = np.array([-intercept[0] / 2.0, intercept[0] / 2.0])
        classes = np.asarray(clf.classes_)
        if sorted(classes.tolist()) != list(range(len(self.teams))):
            raise ValueError("the pipeline's classes do not match the taxonomy")
        order = np.argsort(classes)
        # Feature-major, so one ticket's few features are a contiguous row gather.
        self._weights: NDArray[np.float64] = np.ascontiguousarray(coef[order].T)
        self._intercept: NDArray[np.float64] = intercept[order]
        # How much each feature favours each team over the mean of the others: the explanation.
        k = self._weights.shape[1]
        others = (self._weights.sum(axis=1, keepdims=True) - self._weights) / max(k - 1, 1)
        self._advantage: NDArray[np.float64] = np.ascontiguousarray(self._weights - others)
        self._names: list[str] = [""] * len(self._vocabulary)
        for term, index in self._vocabulary.items():
            self._names[index] = term
        ids = _TokenIds(self._vocabulary)
        self._token_ids, self._id_count = ids.token_ids, ids.count
        self._unigram_feature, self._bigram_codes, self._bigram_feature = ids.unigram, ids.codes, ids.bigram

    # -- the arithmetic -------------------------------------------------------------------

    def _grams(self, text: str) -> list[str]:
        """The vectorizer's features of ``text`` (unigrams, then bigrams), as strings."""
        tokens = self._tokens(text)
        if self._bigrams:
            return [*tokens, *(f"{a} {b}" for a, b in pairwise(tokens))]
        return tokens

    def _features(self, text: str) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        counts = Counter(self._grams(text))
        vocabulary = self._vocabulary
        # Set intersection in C: most n-grams of a ticket are not in the vocabulary.
        known = list(counts.keys() & vocabulary.keys())
        if not known:
            return _NO_INDICES, _NO_VALUES
        indices = np.fromiter(map(vocabulary.__getitem__, known), dtype=np.intp, count=len(known))
        tf = np.fromiter(map(counts.__getitem__, known), dtype=np.float64, count=len(known))
        if self._sublinear:
            tf = np.log(tf) + 1.0
        values = tf * self._idf[indices]
        values /= math.sqrt(float(values @ values))
        return indices, values

    def _proba(self, indices: NDArray[np.intp], values: NDArray[np.float64]) -> NDArray[np.float64]:
        logits = values @ self._weights[indices] + self._intercept
        if self._shrink > 0:
            logits *= indices.size / (indices.size + self._shrink)
        logits -= logits.max()
        exp = np.exp(logits)
        result: NDArray[np.float64] = exp / exp.sum()
        return result

    def proba(self, text: str) -> NDArray[np.float64]:
        """Calibrated probabilities per team (taxonomy order): the pipeline's logits scaled for evidence."""
        return self._proba(*self._features(text))

    def _explain(self, indices: NDArray[np.intp], values: NDArray[np.float64], top: int) -> list[Term]:
        if indices.size == 0:
            return []
        contribution = values * self._advantage[indices, top]
        # Largest contribution first; ties broken by feature index, so every path agrees.
        order = np.lexsort((indices, -contribution))[:EXPLAIN_TERMS]
        order = order[contribution[order] > 0]
        names = self._names
        return [
            Term(term=names[index], weight=weight)
            for index, weight in zip(indices[order].tolist(), np.round(contribution[order], 4).tolist(), strict=True)
        ]

    def _decision(
        self,
        proba: NDArray[np.float64],
        indices: NDArray[np.intp],
        values: NDArray[np.float64],
        item_id: str | None,
        truncated: bool,
    ) -> Decision:
        top = int(proba.argmax())
        scores = proba.tolist()
        confidence = scores[top]
        return Decision(
            team=self.teams[top],
            confidence=confidence,
            abstained=indices.size == 0 or confidence < self.team_thresholds[top],
            scores=dict(zip(self.teams, scores, strict=True)),
            explanation=self._explain(indices, values, top),
            model_version=self.version,
            id=item_id,
            truncated=truncated,
        )

    def _prepare(self, title: str | None, body: str | None, repository: str | None = None) -> tuple[str, bool]:
        """The text the model reads, and whether the ticket was over the operator's length limit.

        The model reads the start of a long body by design (``BODY_CHARS``); ``truncated`` says
        that the ticket itself went past ``max_chars``, the limit an operator sets.
        """
        text = model_text(title, body, repository)
        over = len(title or "") + len(body or "") > self.max_chars
        return (text[: self.max_chars], True) if over else (text, False)

    # -- public surface -------------------------------------------------------------------

    def decide(
        self,
        title: str | None,
        body: str | None = None,
        item_id: str | None = None,
        repository: str | None = None,
    ) -> Decision:
        """Classify one ticket; ``repository``, when known, is read as evidence too."""
        text, truncated = self._prepare(title, body, repository)
        indices, values = self._features(text)
        return self._decision(self._proba(indices, values), indices, values, item_id, truncated)

    def decide_many(self, items: Sequence[TicketInput]) -> list[Decision]:
        """Classify ``(id, title, body)`` or ``(id, title, body, repository)`` items in one pass, in order."""
        if not items:
            return []
        prepared = [self._prepare(*item[1:]) for item in items]
        batch = self._batch([text for text, _ in prepared])
        proba = self._softmax_rows(self._logits(batch))
        top = proba.argmax(axis=1)
        contribution = batch.data * self._advantage[batch.indices, top[batch.rows]]
        # Only terms that pushed towards the chosen team can explain it. Sorted by row, then
        # largest contribution; entries arrive ordered by row and feature index and lexsort is
        # stable, so ties fall to the lower feature index, as on the single-ticket path.
        pushed = contribution > 0
        rows, indices, contribution = batch.rows[pushed], batch.indices[pushed], contribution[pushed]
        order = np.lexsort((-contribution, rows))
        rows = rows[order]
        counts = np.bincount(rows, minlength=len(items))
        starts = np.zeros(len(items) + 1, dtype=np.intp)
        np.cumsum(counts, out=starts[1:])
        kept = np.arange(rows.size) - starts[rows] < EXPLAIN_TERMS
        names = self._names
        terms = [
            Term(term=names[index], weight=weight)
            for index, weight in zip(
                indices[order][kept].tolist(), np.round(contribution[order][kept], 4).tolist(), strict=True
            )
        ]
        ends = np.cumsum(np.minimum(counts, EXPLAIN_TERMS)).tolist()
        teams, thresholds, version = self.teams, self.team_thresholds, self.version
        evidence = (np.diff(batch.indptr) > 0).tolist()
        decisions = []
        first = 0
        for scores, best, last, item, (_, truncated), known in zip(
            proba.tolist(), top.tolist(), ends, items, prepared, evidence, strict=True
        ):
            item_id = item[0]
            decisions.append(
                Decision(
                    team=teams[best],
                    confidence=scores[best],
                    abstained=not known or scores[best] < thresholds[best],
                    scores=dict(zip(teams, scores, strict=True)),
                    explanation=terms[first:last],
                    model_version=version,
                    id=item_id,
                    truncated=truncated,
                )
            )
            first = last
        return decisions

    def _batch(self, texts: Sequence[str]) -> _SparseBatch:
        """TF-IDF rows for many texts, equal to the vectorizer's transform, counted in numpy.

        Tokens become ids once; a bigram is looked up as the code ``first * ids + second`` in
        a sorted array, so no bigram string is ever built.
        """
        tokens_of, lookup = self._tokens, self._token_ids.get
        ids: list[int] = []
        lengths: list[int] = []
        for text in texts:
            tokens = tokens_of(text)
            ids.extend(map(lookup, tokens, repeat(-1)))
            lengths.append(len(tokens))
        n = len(texts)
        token_ids = np.array(ids, dtype=np.int64)
        token_rows = np.repeat(np.arange(n, dtype=np.int64), np.array(lengths, dtype=np.int64))
        known = token_ids >= 0
        unigram = self._unigram_feature[token_ids[known]]
        feature_parts = [unigram[unigram >= 0]]
        row_parts = [token_rows[known][unigram >= 0]]
        if self._bigrams and token_ids.size > 1 and self._bigram_codes.size:
            first, second = token_ids[:-1], token_ids[1:]
            valid = (token_rows[:-1] == token_rows[1:]) & (first >= 0) & (second >= 0)
            codes = first[valid] * self._id_count + second[valid]
            position = np.minimum(np.searchsorted(self._bigram_codes, codes), self._bigram_codes.size - 1)
            hit = self._bigram_codes[position] == codes
            feature_parts.append(self._bigram_feature[position[hit]])
            row_parts.append(token_rows[:-1][valid][hit])
        n_features = len(self._names)
        keys, counts = np.unique(
            np.concatenate(row_parts) * n_features + np.concatenate(feature_parts), return_counts=True
        )
        rows = (keys // n_features).astype(np.intp)
        indices = (keys % n_features).astype(np.intp)
        tf = counts.astype(np.float64)
        if self._sublinear:
            tf = np.log(tf) + 1.0
        data = tf * self._idf[indices]
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=n))
        if data.size:
            data /= norms[rows]
        indptr = np.zeros(n + 1, dtype=np.intp)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return _SparseBatch(data=data, indices=indices, indptr=indptr, rows=rows, n_features=n_features)

    def proba_many(self, tickets: Sequence[tuple[str | None, str | None]]) -> NDArray[np.float64]:
        """Calibrated probabilities for many ``(title, body)`` tickets, one row each."""
        batch = self._batch([self._prepare(title, body)[0] for title, body in tickets])
        return self._softmax_rows(self._logits(batch))

    def _logits(self, batch: _SparseBatch) -> NDArray[np.float64]:
        logits: NDArray[np.float64] = np.asarray(batch.matrix() @ self._weights) + self._intercept
        if self._shrink > 0:
            evidence = np.diff(batch.indptr).astype(np.float64)
            logits *= (evidence / (evidence + self._shrink))[:, None]
        return logits

    @staticmethod
    def _softmax_rows(logits: NDArray[np.float64]) -> NDArray[np.float64]:
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        result: NDArray[np.float64] = exp / exp.sum(axis=1, keepdims=True)
        return result
