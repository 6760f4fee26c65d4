"""Registry pointers in the database, for replicas that share PostgreSQL and a registry volume.

With SQLite (one machine) the registry keeps ACTIVE, SHADOW and history.jsonl as files beside the
versions. With PostgreSQL they live in the database, so every replica and the CLI read and change
the same pointers in transactions; the artifacts stay on the shared volume.
"""

from __future__ import annotations

import msgspec

from model.registry import Activation, Manifest, Registry
from service.settings import Settings
from service.store import Store

__all__ = ["StorePointers", "registry_for"]


class StorePointers:
    """The registry's pointers and history kept in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def active(self) -> str | None:
        """The active version."""
        return self.store.models.pointer("active")

    def shadow(self) -> str | None:
        """The shadow version."""
        return self.store.models.pointer("shadow")

    def activate(self, event: Activation) -> None:
        """Point 'active' at the version and record the event, in one transaction."""
        self.store.models.set_pointer("active", event.version, msgspec.json.encode(event))

    def set_shadow(self, version: str | None) -> None:
        """Point 'shadow' at a version, or clear it."""
        self.store.models.set_pointer("shadow", version)

    def history(self) -> list[Activation]:
        """Every activation, oldest first."""
        decoder = msgspec.json.Decoder(Activation)
        return [decoder.decode(event) for event in self.store.models.activation_events()]

    def record(self, manifest: Manifest) -> None:
        """Store the manifest too, so replicas can list versions from the database."""
        self.store.models.record_version(manifest.version, manifest.created_at, msgspec.json.encode(manifest))


def registry_for(settings: Settings, store: Store) -> Registry:
    """The registry as the deployment shares it: file pointers with SQLite, database pointers with PostgreSQL."""
    if store.is_shared:
        return Registry(settings.registry_dir, StorePointers(store))
    return Registry(settings.registry_dir)
