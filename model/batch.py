"""Ordered parallel labelling: decide a stream of rows in chunks, here or in worker processes.

``label_rows`` decides chunks in this process or in worker processes (with a bounded number of
chunks in flight, so memory stays flat) and keeps input order. Rows come from anywhere (the
service's backlog readers, a bench script): anything with an ``id``, a ``title``, a ``body``
an ``error`` (a row that could not be read is passed through undecided) and a ``repository``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from model.decision import Decision
from model.inference import Classifier, TicketInput
from model.rules import RuleFacts, RuleSet

__all__ = ["BatchRow", "Labelled", "StoredClassifier", "facts_of_row", "label_rows"]


class BatchRow(Protocol):
    """What labelling reads of a row."""

    @property
    def id(self) -> str | None:
        """The row's id, if it has one."""

    @property
    def title(self) -> str | None:
        """The ticket's title."""

    @property
    def body(self) -> str | None:
        """The ticket's body."""

    @property
    def error(self) -> str | None:
        """Why the row could not be read; such a row is not decided."""

    @property
    def repository(self) -> str | None:
        """Where the ticket was filed, when known (read as evidence)."""


R = TypeVar("R", bound=BatchRow)


@dataclass(frozen=True, slots=True)
class Labelled(Generic[R]):
    """A row with its decision, or with the reason it has none (``row.error``)."""

    row: R
    decision: Decision | None


# -- deciding, here or in worker processes ---------------------------------------------------

_worker: Classifier | None = None


def _start_worker(factory: Callable[[], Classifier]) -> None:
    global _worker
    _worker = factory()


def _decide_in_worker(tickets: list[TicketInput]) -> list[Decision]:
    assert _worker is not None
    return _worker.decide_many(tickets)


def _chunks(rows: Iterable[R], size: int) -> Iterator[list[R]]:
    chunk: list[R] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def facts_of_row(row: BatchRow) -> RuleFacts:
    """What routing rules see of a row; rows that know no author, labels or tracker leave them empty."""
    labels = getattr(row, "labels", ())
    return RuleFacts(row.title, getattr(row, "tracker", None), row.repository, getattr(row, "author", None), labels)


def _pair(chunk: list[R], decisions: Iterator[Decision], rules: RuleSet | None = None) -> list[Labelled[R]]:
    paired = [Labelled(row, None if row.error else next(decisions)) for row in chunk]
    if not rules:
        return paired
    return [
        item if item.decision is None else Labelled(item.row, rules.apply(item.decision, facts_of_row(item.row)))
        for item in paired
    ]


def _tickets(chunk: list[R]) -> list[TicketInput]:
    return [(row.id, row.title, row.body, row.repository) for row in chunk if row.error is None]


def label_rows(
    rows: Iterable[R],
    classifier_factory: Callable[[], Classifier],
    jobs: int = 1,
    chunk_size: int = 2000,
    rules: RuleSet | None = None,
) -> Iterator[Labelled[R]]:
    """Decide every readable row, in input order, with ``jobs`` processes.

    ``classifier_factory`` is called once per process (it must be picklable for ``jobs > 1``).
    At most ``2 * jobs`` chunks are in flight, so memory does not grow with the input. ``rules``
    are applied here, in this process, as the service applies them.
    """
    if jobs <= 1:
        classifier = classifier_factory()
        for chunk in _chunks(rows, chunk_size):
            yield from _pair(chunk, iter(classifier.decide_many(_tickets(chunk))), rules)
        return
    with ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker, initargs=(classifier_factory,)) as pool:
        pending: list[tuple[list[R], Future[list[Decision]]]] = []
        for chunk in _chunks(rows, chunk_size):
            pending.append((chunk, pool.submit(_decide_in_worker, _tickets(chunk))))
            if len(pending) >= 2 * jobs:
                done_chunk, future = pending.pop(0)
                yield from _pair(done_chunk, iter(future.result()), rules)
        for done_chunk, future in pending:
            yield from _pair(done_chunk, iter(future.result()), rules)


@dataclass(frozen=True)
class StoredClassifier:
    """A picklable recipe for one stored version's classifier: each worker process loads it itself."""

    registry: Path
    version: str
    max_chars: int = 20_000
    threshold: float | None = None

    def __call__(self) -> Classifier:
        """Load (sha256 and library versions checked) and build the classifier."""
        from model.registry import Registry

        return Registry(self.registry).load(self.version).classifier(self.max_chars, self.threshold)
