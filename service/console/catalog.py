"""Model versions for the console: manifests read once (versions never change) and their charts as PNGs."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from model.errors import ModelIntegrityError
from model.evaluation import Metrics, confusion_png, reliability_png
from model.registry import Manifest, Registry

__all__ = ["ModelCatalog"]

CHARTS_KEPT = 32


class ModelCatalog:
    """Manifests and chart images by version, cached: a version is immutable once saved."""

    def __init__(self) -> None:
        self._manifests: dict[str, Manifest] = {}
        self._charts: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def manifests(self, registry: Registry) -> list[Manifest]:
        """Every stored version, newest first; only versions not seen before are read from disk."""
        found = []
        for version in registry.versions():
            manifest = self._manifests.get(version)
            if manifest is None:
                try:
                    manifest = registry.manifest(version)
                except ModelIntegrityError:
                    continue
                self._manifests[version] = manifest
            found.append(manifest)
        return sorted(found, key=lambda m: (m.created_at, m.version), reverse=True)

    def manifest(self, registry: Registry, version: str) -> Manifest:
        """One version's manifest (``ModelNotFoundError`` for an unknown one)."""
        manifest = self._manifests.get(version)
        if manifest is None:
            manifest = self._manifests[version] = registry.manifest(version)
        return manifest

    def chart(self, manifest: Manifest, kind: str) -> bytes | None:
        """A version's ``confusion`` or ``reliability`` chart from its cross-validation, None without one."""
        metrics = manifest.report.cv
        draw: dict[str, Callable[[Metrics, str], bytes]] = {"confusion": confusion_png, "reliability": reliability_png}
        if metrics is None or kind not in draw:
            return None
        key = (manifest.version, kind)
        with self._lock:
            image = self._charts.get(key)
            if image is None:
                title = "Cross-validation: confusion" if kind == "confusion" else "Cross-validation: reliability"
                image = draw[kind](metrics, title)
                self._charts[key] = image
                while len(self._charts) > CHARTS_KEPT:
                    self._charts.popitem(last=False)
            else:
                self._charts.move_to_end(key)
            return image
