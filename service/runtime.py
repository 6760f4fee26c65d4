"""The running service's parts, built at start-up and shared by every handler."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State

from model.registry import Registry
from service.decisions import DecisionWorker
from service.jobs import TrainingJobs
from service.serving import ModelHolder
from service.settings import Settings
from service.store import Store

__all__ = ["Runtime", "provide_runtime"]


@dataclass(slots=True)
class Runtime:
    """Settings, registry, store, served model, decision worker and training jobs: the only shared state."""

    settings: Settings
    registry: Registry
    store: Store
    holder: ModelHolder
    decisions: DecisionWorker
    jobs: TrainingJobs


def provide_runtime(state: State) -> Runtime:
    """Dependency: the app's runtime."""
    runtime: Runtime = state.runtime
    return runtime
