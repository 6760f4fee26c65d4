"""Training a new version from the configured data and registering it."""

from __future__ import annotations

import logging

from model.dataset import load_training_data
from model.registry import Manifest, Registry
from model.training import TrainingParams, train
from service.settings import Settings

__all__ = ["ensure_active_model", "train_version", "training_params"]

log = logging.getLogger("ticket_router.trainer")


def training_params(settings: Settings) -> TrainingParams:
    """Training parameters as the settings ask for them."""
    return TrainingParams(target_precision=settings.target_precision)


def train_version(settings: Settings, activate: bool = True, note: str = "", actor: str = "cli") -> Manifest:
    """Train from ``settings.training_data``, store the version, and activate it if asked."""
    data = load_training_data(settings.training_data)
    model = train(data.taxonomy, data.examples, training_params(settings))
    registry = Registry(settings.registry_dir)
    manifest = registry.save(model, data.taxonomy.to_toml_dict(), note=note)
    if activate:
        registry.activate(manifest.version, actor=actor)
    log.info("trained model %s in %.1fs", manifest.version, model.report.seconds)
    return manifest


def ensure_active_model(settings: Settings) -> Manifest | None:
    """Train and activate the default model when the registry has no active version.

    Returns the new manifest, or None when a version was already active.
    """
    registry = Registry(settings.registry_dir)
    if registry.active_version() is not None:
        return None
    return train_version(settings, activate=True, note="default model trained at first start", actor="serve")
