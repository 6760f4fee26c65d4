"""The database schema: every table, and the migrations that create them, in order.

A released migration never changes; a new table or column is a new migration appended to
``MIGRATIONS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = [
    "MIGRATIONS",
    "activations",
    "corrections",
    "decisions",
    "jobs",
    "metadata",
    "model_pointers",
    "model_versions",
    "schema_migrations",
    "shadow_decisions",
    "webhook_deliveries",
    "writebacks",
]

metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("ticket_ref", sa.String(500), nullable=True, index=True),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("team", sa.String(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("abstained", sa.Boolean, nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("scores", sa.Text, nullable=False),
)


corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(200), nullable=True),
    sa.Column("team", sa.String(64), nullable=False),
    sa.Column("previous_team", sa.String(64), nullable=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("decision_id", sa.String(32), nullable=True, index=True),
    sa.Column("ticket_ref", sa.String(500), nullable=True, index=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("tracker", sa.String(16), primary_key=True),
    sa.Column("delivery_id", sa.String(200), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("action", sa.String(100), nullable=True),
    sa.Column("ticket_ref", sa.String(500), nullable=True, index=True),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("decision_id", sa.String(32), nullable=True),
)

writebacks = sa.Table(
    "writebacks",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("tracker", sa.String(16), nullable=False),
    sa.Column("ticket_ref", sa.String(500), nullable=False, index=True),
    sa.Column("decision_id", sa.String(32), nullable=True),
    sa.Column("label", sa.String(255), nullable=True),
    sa.Column("comment", sa.Text, nullable=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=True, index=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
)


jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    # 1 while queued or running, NULL after: the unique constraint allows one training at a time.
    sa.Column("active_slot", sa.Integer, nullable=True, unique=True),
    sa.Column("requested_by", sa.String(200), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("options", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    # What a running job is doing and how far along it is (0 to 1); added by migration 5.
    sa.Column("stage", sa.String(200), nullable=True),
    sa.Column("progress", sa.Float, nullable=True),
)

shadow_decisions = sa.Table(
    "shadow_decisions",
    metadata,
    sa.Column("decision_id", sa.String(32), primary_key=True),
    sa.Column("model_version", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("team", sa.String(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("abstained", sa.Boolean, nullable=False),
)


model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("manifest", sa.Text, nullable=False),
)

model_pointers = sa.Table(
    "model_pointers",
    metadata,
    sa.Column("name", sa.String(16), primary_key=True),
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

activations = sa.Table(
    "activations",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("event", sa.Text, nullable=False),
)


def _m001_decisions(conn: Connection) -> None:
    decisions.create(conn, checkfirst=True)


def _m002_corrections_deliveries_writebacks(conn: Connection) -> None:
    for table in (corrections, webhook_deliveries, writebacks):
        table.create(conn, checkfirst=True)


def _m003_jobs_and_shadow(conn: Connection) -> None:
    for table in (jobs, shadow_decisions):
        table.create(conn, checkfirst=True)


def _m004_model_pointers(conn: Connection) -> None:
    for table in (model_versions, model_pointers, activations):
        table.create(conn, checkfirst=True)
    conn.execute(
        model_pointers.insert(), [{"name": n, "version": None, "updated_at": time.time()} for n in ("active", "shadow")]
    )


def _m005_job_progress(conn: Connection) -> None:
    # Databases made before this migration lack the columns; newer ones got them from _m003.
    have = {column["name"] for column in sa.inspect(conn).get_columns("jobs")}
    for column in (jobs.c.stage, jobs.c.progress):
        if column.name not in have:
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE jobs ADD COLUMN {column.name} {kind}"))


# (version, name, function). Append only: a released migration never changes.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "decisions audit trail", _m001_decisions),
    (2, "corrections, webhook deliveries, write-backs", _m002_corrections_deliveries_writebacks),
    (3, "training jobs and shadow decisions", _m003_jobs_and_shadow),
    (4, "model versions, pointers and activations shared by replicas", _m004_model_pointers),
    (5, "training job stage and progress", _m005_job_progress),
]
