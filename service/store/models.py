"""Model versions, the active and shadow pointers, and the activation history, shared by replicas."""

from __future__ import annotations

import time

import sqlalchemy as sa

from service.store.database import Database
from service.store.records import new_id
from service.store.schema import activations, model_pointers, model_versions

__all__ = ["ModelRows"]


class ModelRows:
    """The registry's pointers and manifests as rows, for deployments on PostgreSQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pointer(self, name: str) -> str | None:
        """The version a pointer ('active' or 'shadow') names."""
        with self.db.read() as conn:
            row = conn.execute(sa.select(model_pointers.c.version).where(model_pointers.c.name == name)).first()
        return None if row is None else row[0]

    def set_pointer(self, name: str, version: str | None, event: bytes | None = None) -> None:
        """Point ``name`` at ``version``; with ``event``, record the activation in the same transaction."""
        with self.db.write() as conn:
            conn.execute(
                model_pointers.update()
                .where(model_pointers.c.name == name)
                .values(version=version, updated_at=time.time())
            )
            if event is not None:
                conn.execute(activations.insert().values(id=new_id(), event=event.decode()))

    def activation_events(self) -> list[bytes]:
        """Every recorded activation, oldest first, as JSON."""
        with self.db.read() as conn:
            rows = conn.execute(sa.select(activations.c.event).order_by(activations.c.id))
            return [row[0].encode() for row in rows]

    def record_version(self, version: str, created_at: str, manifest: bytes) -> None:
        """Keep a version's manifest where every replica can query it."""
        with self.db.write() as conn:
            exists = conn.execute(
                sa.select(model_versions.c.version).where(model_versions.c.version == version)
            ).first()
            if exists is None:
                conn.execute(
                    model_versions.insert().values(version=version, created_at=created_at, manifest=manifest.decode())
                )
