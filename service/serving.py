"""The model being served: loaded from the registry, swapped in place when ACTIVE changes."""

from __future__ import annotations

import logging
import threading

from model.errors import ModelIntegrityError, ModelNotFoundError
from model.inference import Classifier
from model.registry import Manifest, Registry
from model.taxonomy import Taxonomy
from service.errors import NoModelError
from service.metrics import set_active_model

__all__ = ["ModelHolder", "NoModelError"]

log = logging.getLogger("ticket_router.serving")


class ModelHolder:
    """Holds the active model; a swap replaces one reference, so a request sees one version only."""

    def __init__(self, registry: Registry, max_chars: int, threshold_override: float | None = None) -> None:
        self.registry = registry
        self.max_chars = max_chars
        self.threshold_override = threshold_override
        self._current: tuple[Classifier, Manifest] | None = None
        self._shadow: Classifier | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def classifier(self) -> Classifier:
        """The active classifier; ``NoModelError`` when none is loaded."""
        current = self._current
        if current is None:
            raise NoModelError(self.last_error or "no model is loaded")
        return current[0]

    @property
    def shadow(self) -> Classifier | None:
        """A candidate run beside the active model, whose decisions are recorded but not returned."""
        return self._shadow

    @property
    def manifest(self) -> Manifest | None:
        """The active model's manifest, if one is loaded."""
        current = self._current
        return None if current is None else current[1]

    @property
    def taxonomy(self) -> Taxonomy:
        """The active model's taxonomy: the teams every consumer validates against; ``NoModelError`` without one."""
        current = self._current
        if current is None:
            raise NoModelError(self.last_error or "no model is loaded")
        return current[1].taxonomy

    @property
    def version(self) -> str | None:
        """The loaded version, if any."""
        current = self._current
        return None if current is None else current[1].version

    def load(self, version: str) -> Manifest:
        """Load ``version`` from the registry and serve it from now on."""
        loaded = self.registry.load(version)
        classifier = loaded.classifier(self.max_chars, self.threshold_override)
        set_active_model(version, self.version)
        self._current = (classifier, loaded.manifest)
        self.last_error = None
        log.info("serving model %s", version)
        return loaded.manifest

    def refresh(self) -> bool:
        """Follow the registry's ACTIVE and SHADOW pointers; True when the active model was swapped."""
        with self._lock:
            self._refresh_shadow()
            wanted = self.registry.active_version()
            if wanted is None:
                if self._current is None:
                    self.last_error = "no active model: train one with `ticket-router train`"
                return False
            if wanted == self.version:
                return False
            try:
                self.load(wanted)
            except (ModelNotFoundError, ModelIntegrityError) as exc:
                # Keep serving the previous version; readiness reports the problem.
                self.last_error = str(exc)
                log.error("cannot load model %s: %s", wanted, exc)
                return False
            return True

    def _refresh_shadow(self) -> None:
        wanted = self.registry.shadow_version()
        current = self._shadow.version if self._shadow is not None else None
        if wanted == current:
            return
        if wanted is None:
            self._shadow = None
            log.info("shadow mode stopped")
            return
        try:
            self._shadow = self.registry.load(wanted).classifier(self.max_chars, self.threshold_override)
            log.info("running model %s in shadow", wanted)
        except (ModelNotFoundError, ModelIntegrityError) as exc:
            self._shadow = None
            log.error("cannot load shadow model %s: %s", wanted, exc)
