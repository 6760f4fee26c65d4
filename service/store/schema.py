"""The database schema: every table, and the migrations that create them, in order.

A released migration never changes; a new table or column is a new migration appended to
``MIGRATIONS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "MIGRATIONS",
    "activations",
    "corrections",
    "decisions",
    "jobs",
    "metadata",
    "model_pointers",
    "model_versions",
    "outcomes",
    "questions",
    "schema_migrations",
    "shadow_decisions",
    "storable",
    "triage",
    "webhook_deliveries",
    "webhook_fingerprints",
    "writebacks",
]


def storable(text: str) -> str:
    """``text`` as both backends store it: without NUL (PostgreSQL refuses it) and as valid UTF-8."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: PostgreSQL's driver cannot encode them
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


class Str(TypeDecorator[str]):
    """A bounded string column whose values are made storable on both backends."""

    impl = sa.String
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable(value) if isinstance(value, str) else value


class LongText(TypeDecorator[str]):
    """An unbounded text column whose values are made storable on both backends."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return storable(value) if isinstance(value, str) else value


metadata = sa.MetaData()

schema_migrations = sa.Table(
    "schema_migrations",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("name", Str(200), nullable=False),
    sa.Column("applied_at", sa.Float, nullable=False),
)

decisions = sa.Table(
    "decisions",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("source", Str(32), nullable=False),
    sa.Column("ticket_ref", Str(500), nullable=True, index=True),
    sa.Column("text_sha256", Str(64), nullable=False),
    sa.Column("team", Str(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("abstained", sa.Boolean, nullable=False),
    sa.Column("model_version", Str(64), nullable=False),
    sa.Column("scores", LongText, nullable=False),
    # The routing rule that decided (None: the model did), and whether it said to leave the ticket alone.
    sa.Column("rule", Str(100), nullable=True),
    sa.Column("skipped", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
)


corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("source", Str(32), nullable=False),
    sa.Column("actor", Str(200), nullable=True),
    sa.Column("team", Str(64), nullable=False),
    sa.Column("previous_team", Str(64), nullable=True),
    sa.Column("title", LongText, nullable=False),
    sa.Column("body", LongText, nullable=False),
    sa.Column("text_sha256", Str(64), nullable=False),
    sa.Column("decision_id", Str(32), nullable=True, index=True),
    sa.Column("ticket_ref", Str(500), nullable=True, index=True),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("tracker", Str(16), primary_key=True),
    sa.Column("delivery_id", Str(200), primary_key=True),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
    sa.Column("event", Str(100), nullable=False),
    sa.Column("action", Str(100), nullable=True),
    sa.Column("ticket_ref", Str(500), nullable=True, index=True),
    sa.Column("outcome", Str(32), nullable=False),
    sa.Column("reason", LongText, nullable=True),
    sa.Column("decision_id", Str(32), nullable=True),
)

# The content of recent deliveries (tracker, ticket, action and a digest of the body): the same
# signed body sent again under a new delivery id is a replay, not a new event.
webhook_fingerprints = sa.Table(
    "webhook_fingerprints",
    metadata,
    sa.Column("tracker", Str(16), primary_key=True),
    sa.Column("fingerprint", Str(64), primary_key=True),
    sa.Column("delivery_id", Str(200), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False, index=True),
)

writebacks = sa.Table(
    "writebacks",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("tracker", Str(16), nullable=False),
    sa.Column("ticket_ref", Str(500), nullable=False, index=True),
    sa.Column("decision_id", Str(32), nullable=True),
    sa.Column("label", Str(255), nullable=True),
    sa.Column("comment", LongText, nullable=True),
    sa.Column("request", LongText, nullable=False),
    sa.Column("status", Str(16), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Float, nullable=True, index=True),
    sa.Column("claimed_until", sa.Float, nullable=True),
    sa.Column("last_error", LongText, nullable=True),
)


jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("kind", Str(32), nullable=False),
    sa.Column("status", Str(16), nullable=False, index=True),
    # 1 while queued or running, NULL after: the unique constraint allows one training at a time.
    sa.Column("active_slot", sa.Integer, nullable=True, unique=True),
    sa.Column("requested_by", Str(200), nullable=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("started_at", sa.Float, nullable=True),
    sa.Column("finished_at", sa.Float, nullable=True),
    sa.Column("heartbeat_at", sa.Float, nullable=True),
    sa.Column("options", LongText, nullable=False),
    sa.Column("result", LongText, nullable=True),
    sa.Column("error", LongText, nullable=True),
    # What a running job is doing and how far along it is (0 to 1); added by migration 8.
    sa.Column("stage", Str(200), nullable=True),
    sa.Column("progress", sa.Float, nullable=True),
)

shadow_decisions = sa.Table(
    "shadow_decisions",
    metadata,
    sa.Column("decision_id", Str(32), primary_key=True),
    sa.Column("model_version", Str(64), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("team", Str(64), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("abstained", sa.Boolean, nullable=False),
)


model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version", Str(64), primary_key=True),
    sa.Column("created_at", Str(40), nullable=False),
    sa.Column("manifest", LongText, nullable=False),
)

model_pointers = sa.Table(
    "model_pointers",
    metadata,
    sa.Column("name", Str(16), primary_key=True),
    sa.Column("version", Str(64), nullable=True),
    sa.Column("updated_at", sa.Float, nullable=False),
)

activations = sa.Table(
    "activations",
    metadata,
    sa.Column("id", Str(32), primary_key=True),
    sa.Column("event", LongText, nullable=False),
)


# The texts of the decisions a person should look at (abstained, or the top two teams close):
# the audit trail keeps only a hash, and nobody can triage a hash. Rows leave the queue when a
# correction names their decision or ticket, or when a newer decision for the ticket supersedes
# them, and are deleted after the triage retention.
triage = sa.Table(
    "triage",
    metadata,
    sa.Column("decision_id", Str(32), primary_key=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("reason", Str(16), nullable=False),
    sa.Column("status", Str(16), nullable=False),
    sa.Column("ticket_ref", Str(500), nullable=True, index=True),
    sa.Column("url", Str(2000), nullable=True),
    sa.Column("title", LongText, nullable=False),
    sa.Column("body", LongText, nullable=False),
    sa.Column("resolved_at", sa.Float, nullable=True),
    sa.Column("correction_id", Str(32), nullable=True),
    # The queue: open rows, newest first (decision ids sort by time), read from this index alone.
    sa.Index("ix_triage_status_decision", "status", "decision_id"),
)


# One question per ticket, ever: the primary key refuses a second one, on every replica.
questions = sa.Table(
    "questions",
    metadata,
    sa.Column("ticket_ref", Str(500), primary_key=True),
    sa.Column("tracker", Str(16), nullable=False),
    sa.Column("asked_at", sa.Float, nullable=False),
    sa.Column("decision_id", Str(32), nullable=False),
    sa.Column("teams", LongText, nullable=False),
    sa.Column("question", LongText, nullable=False),
    sa.Column("status", Str(16), nullable=False),
    sa.Column("answered_at", sa.Float, nullable=True),
    sa.Column("answer_decision_id", Str(32), nullable=True),
    sa.Column("outcome", LongText, nullable=True),
)

# What people finally said a routed ticket's team was: one row per decision, the latest wins.
outcomes = sa.Table(
    "outcomes",
    metadata,
    sa.Column("decision_id", Str(32), primary_key=True),
    sa.Column("ticket_ref", Str(500), nullable=True, index=True),
    sa.Column("created_at", sa.Float, nullable=False, index=True),
    sa.Column("team", Str(64), nullable=False),
    sa.Column("source", Str(32), nullable=False),
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


def _m005_triage(conn: Connection) -> None:
    triage.create(conn, checkfirst=True)


def _m006_webhook_fingerprints(conn: Connection) -> None:
    webhook_fingerprints.create(conn, checkfirst=True)


def _m007_routing_policy(conn: Connection) -> None:
    present = {column["name"] for column in sa.inspect(conn).get_columns("decisions")}
    if "rule" not in present:
        conn.execute(sa.text("ALTER TABLE decisions ADD COLUMN rule VARCHAR(100)"))
    if "skipped" not in present:
        conn.execute(sa.text("ALTER TABLE decisions ADD COLUMN skipped BOOLEAN NOT NULL DEFAULT FALSE"))
    for table in (questions, outcomes):
        table.create(conn, checkfirst=True)


def _m008_job_progress(conn: Connection) -> None:
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
    (5, "triage queue: texts of the decisions a person should look at", _m005_triage),
    (6, "fingerprints of recent webhook deliveries, against replays under new ids", _m006_webhook_fingerprints),
    (7, "routing policy: rule decisions, questions, human outcomes", _m007_routing_policy),
    (8, "training job stage and progress", _m008_job_progress),
]
