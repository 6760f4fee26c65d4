"""Fitting many pipelines on one corpus: every text analysed once, the fits run side by side.

Cross-validation, the final fit and the promotion gate's baseline fit the same kind of pipeline
on overlapping parts of the same texts. Analysing a text (preprocessing, tokens, n-grams) costs
about as much as fitting the logistic regression, so a ``Corpus`` analyses every distinct text
once into a count matrix; each ``FitTask`` then takes its rows and its vocabulary's columns, fits
the idf on its rows and the classifier on the result. The numbers are those ``TfidfVectorizer``
gives for the same documents and vocabulary: the same counts, idf and normalisation.

Fits run in worker processes (``workers``: a process pool the caller opens once for a whole
training run and closes after it, so nothing is left running) when there are enough texts for
that to pay, each with BLAS held to one thread: on a busy two-core machine, OpenBLAS threads
spinning against each other made one fit two to four times slower.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context

import msgspec
import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from model.pipeline import PipelineParams, build_pipeline

__all__ = [
    "PARALLEL_MIN_TEXTS",
    "Corpus",
    "FitResult",
    "FitTask",
    "Progress",
    "classifier_logits",
    "exit_with_parent",
    "run_fits",
    "workers",
]

# Below this many texts a fit takes well under a second and starting worker processes costs more.
PARALLEL_MIN_TEXTS = 2000

# (stage, done, total): "cross-validation", 2, 5 means the second of five folds has been fitted.
Progress = Callable[[str, int, int], None]


class FitTask(msgspec.Struct, frozen=True):
    """One pipeline to fit: its documents (corpus rows, repeated as often as they count), their
    labels and weights, its features (corpus columns), and the rows to score (None: keep the model).
    """

    rows: NDArray[np.intp]
    labels: NDArray[np.int64]
    weights: NDArray[np.float64]
    columns: NDArray[np.intp]
    test_rows: NDArray[np.intp] | None = None
    stage: str = ""


class FitResult(msgspec.Struct, frozen=True):
    """What a fit gives back: the scored rows' logits and evidence, or the fitted idf and classifier."""

    logits: NDArray[np.float64] | None = None
    evidence: NDArray[np.int64] | None = None
    tfidf: TfidfTransformer | None = None
    classifier: LogisticRegression | None = None


class Corpus:
    """Distinct texts analysed once, as a count matrix over every term they contain (sorted, as
    ``CountVectorizer`` sorts them, so a sorted vocabulary is an increasing set of columns)."""

    def __init__(self, params: PipelineParams, texts: Iterable[str]) -> None:
        self.ngram_max = params.ngram_max
        self.analyzer = build_pipeline(params).named_steps["tfidf"].build_analyzer()
        unique = list(dict.fromkeys(texts))
        self._row = {text: i for i, text in enumerate(unique)}
        counter = CountVectorizer(analyzer=self.analyzer, dtype=np.float64)
        self.counts: csr_matrix = counter.fit_transform(unique).tocsr() if unique else csr_matrix((0, 0))
        self.terms: NDArray[np.str_] = counter.get_feature_names_out() if unique else np.array([], dtype=str)
        self._present = (self.counts > 0).astype(np.int32).tocsr()

    def has(self, texts: Iterable[str]) -> bool:
        """Whether every text is in the corpus."""
        return all(text in self._row for text in texts)

    def __len__(self) -> int:
        return len(self._row)

    def rows(self, texts: Sequence[str]) -> NDArray[np.intp]:
        """The corpus row of each text."""
        return np.fromiter((self._row[t] for t in texts), dtype=np.intp, count=len(texts))

    def document_frequency(self, rows: NDArray[np.intp]) -> NDArray[np.int64]:
        """In how many of ``rows`` (repeats counting again) each term occurs."""
        if rows.size == 0:
            return np.zeros(self.counts.shape[1], dtype=np.int64)
        return np.asarray(self._present[rows].sum(axis=0), dtype=np.int64).ravel()

    def has_terms(self, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Whether each of ``rows`` has at least one term."""
        present: NDArray[np.bool_] = np.diff(self.counts.indptr)[rows] > 0
        return present

    def pipeline(self, params: PipelineParams, columns: NDArray[np.intp], result: FitResult) -> Pipeline:
        """The fitted scikit-learn pipeline of a kept fit, reading raw text like any other."""
        assert result.tfidf is not None and result.classifier is not None
        pipeline = build_pipeline(params, [str(t) for t in self.terms[columns]])
        vectorizer: TfidfVectorizer = pipeline.named_steps["tfidf"]
        vectorizer.idf_ = result.tfidf.idf_
        pipeline.steps[1] = ("clf", result.classifier)
        return pipeline


def classifier_logits(classifier: LogisticRegression, features: csr_matrix, n_teams: int) -> NDArray[np.float64]:
    """Per-team logits in taxonomy order (a team the classifier never saw gets -1e9)."""
    raw = np.asarray(classifier.decision_function(features), dtype=np.float64)
    if raw.ndim == 1:
        # Binary logistic regression: sigmoid(z) == softmax([-z/2, z/2])[1].
        raw = np.column_stack([-raw / 2.0, raw / 2.0])
    logits = np.full((raw.shape[0], n_teams), -1e9)
    logits[:, classifier.classes_] = raw
    return logits


def _fit(counts: csr_matrix, params: PipelineParams, task: FitTask, n_teams: int) -> FitResult:
    with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        tfidf = TfidfTransformer(sublinear_tf=params.sublinear_tf)
        features = tfidf.fit_transform(counts[task.rows][:, task.columns])
        classifier: LogisticRegression = build_pipeline(params).named_steps["clf"]
        classifier.fit(features, task.labels, sample_weight=task.weights)
        if task.test_rows is None:
            return FitResult(tfidf=tfidf, classifier=classifier)
        test = tfidf.transform(counts[task.test_rows][:, task.columns])
        evidence = np.diff(test.indptr).astype(np.int64)
        return FitResult(logits=classifier_logits(classifier, test, n_teams), evidence=evidence)


def exit_with_parent(parent: int) -> None:
    """A pool initializer: the worker ends as soon as the process that started it is gone.

    A pool worker whose parent was killed (SIGKILL, an OOM kill) would otherwise wait for work
    forever, holding its memory.
    """

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def workers(jobs: int) -> Iterator[Executor | None]:
    """``jobs`` worker processes for ``run_fits`` (None for one: fit in this process), closed on exit."""
    if jobs <= 1:
        yield None
        return
    # spawn: a clean interpreter, not a fork of a process that may hold threads and sockets.
    context = get_context("spawn")
    with ProcessPoolExecutor(jobs, context, initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        yield pool


def run_fits(
    corpus: Corpus,
    tasks: Sequence[FitTask],
    params: PipelineParams,
    n_teams: int,
    *,
    pool: Executor | None = None,
    progress: Progress | None = None,
) -> list[FitResult]:
    """Fit every task (in ``pool``'s processes when the corpus is large enough), results in task order.

    ``progress`` hears of each finished task, counted within its ``stage``.
    """
    totals: dict[str, int] = {}
    for task in tasks:
        totals[task.stage] = totals.get(task.stage, 0) + 1
    done: dict[str, int] = {}

    def report(task: FitTask) -> None:
        done[task.stage] = done.get(task.stage, 0) + 1
        if progress is not None:
            progress(task.stage, done[task.stage], totals[task.stage])

    results: Iterator[FitResult]
    if pool is not None and len(tasks) > 1 and len(corpus) >= PARALLEL_MIN_TEXTS:
        futures = [pool.submit(_fit, corpus.counts, params, task, n_teams) for task in tasks]
        results = (future.result() for future in futures)
    else:
        results = (_fit(corpus.counts, params, task, n_teams) for task in tasks)
    collected = []
    for task, result in zip(tasks, results, strict=True):
        report(task)
        collected.append(result)
    return collected
