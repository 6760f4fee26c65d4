"""The store: decisions, corrections, deliveries and jobs in SQLite (default) or PostgreSQL.

One set of SQLAlchemy Core queries serves both backends. Migrations run at start-up under a
lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so several processes
starting at once apply each migration exactly once.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

__all__ = [
    "CorrectionRecord",
    "DecisionRecord",
    "DeliveryRecord",
    "JobConflictError",
    "JobRecord",
    "ShadowComparison",
    "ShadowRecord",
    "Store",
    "StoreError",
    "WritebackRecord",
    "database_url_for",
    "new_id",
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


_last_stamp = 0
_stamp_lock = threading.Lock()


def new_id() -> str:
    """A unique 32-character row id that sorts by creation time: microseconds, then randomness.

    Within a process the time part strictly increases, so ids made in the same microsecond
    still sort in the order they were made.
    """
    global _last_stamp
    with _stamp_lock:
        now = time.time_ns() // 1000
        _last_stamp = now if now > _last_stamp else _last_stamp + 1
        stamp = _last_stamp
    return f"{stamp:014x}{secrets.token_hex(9)}"


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


class StoreError(Exception):
    """Raised when the database cannot be reached or is in an unusable state."""


class DecisionRecord(msgspec.Struct, frozen=True):
    """One row of the audit trail: which ticket went where, by which model version."""

    id: str
    created_at: float
    source: str
    text_sha256: str
    team: str
    confidence: float
    abstained: bool
    model_version: str
    scores: dict[str, float]
    ticket_ref: str | None = None


class CorrectionRecord(msgspec.Struct, frozen=True):
    """A person's statement of which team owns a ticket: training data for the next model."""

    id: str
    created_at: float
    source: str
    team: str
    title: str
    body: str
    text_sha256: str
    actor: str | None = None
    previous_team: str | None = None
    decision_id: str | None = None
    ticket_ref: str | None = None


class JobRecord(msgspec.Struct, frozen=True):
    """A training job: queued, running, succeeded or failed, with its result or error."""

    id: str
    kind: str
    status: str
    created_at: float
    options: dict[str, Any]
    requested_by: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class ShadowRecord(msgspec.Struct, frozen=True):
    """What a shadowed candidate decided for a ticket the active model decided."""

    decision_id: str
    model_version: str
    created_at: float
    team: str
    confidence: float
    abstained: bool


class ShadowComparison(msgspec.Struct, frozen=True):
    """One shadowed decision beside the active one and the correction, if any."""

    decision_id: str
    active_team: str
    shadow_team: str
    corrected_team: str | None


class JobConflictError(Exception):
    """Raised when a training is requested while another is queued or running."""


class DeliveryRecord(msgspec.Struct, frozen=True):
    """One webhook delivery we processed: what it was and what we did with it."""

    tracker: str
    delivery_id: str
    received_at: float
    event: str
    outcome: str
    action: str | None = None
    ticket_ref: str | None = None
    reason: str | None = None
    decision_id: str | None = None


class WritebackRecord(msgspec.Struct, frozen=True):
    """A write-back to a tracker: the requests still to make, and how the attempts went.

    ``status`` is ``pending`` (due at ``next_attempt_at``), ``done``, ``failed`` (retried at
    ``next_attempt_at``, or only on an admin's request when that is null), ``dry-run`` (recorded,
    never sent) or ``superseded`` (a person labelled the ticket first).
    """

    id: str
    created_at: float
    updated_at: float
    tracker: str
    ticket_ref: str
    request: str
    status: str
    decision_id: str | None = None
    label: str | None = None
    comment: str | None = None
    attempts: int = 0
    next_attempt_at: float | None = None
    claimed_until: float | None = None
    last_error: str | None = None


WRITEBACK_OPEN = ("pending", "failed")
WRITEBACK_OURS = ("pending", "failed", "done")


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


# (version, name, function). Append only: a released migration never changes.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "decisions audit trail", _m001_decisions),
    (2, "corrections, webhook deliveries, write-backs", _m002_corrections_deliveries_writebacks),
    (3, "training jobs and shadow decisions", _m003_jobs_and_shadow),
    (4, "model versions, pointers and activations shared by replicas", _m004_model_pointers),
]

_PG_MIGRATION_LOCK = 7_361_227_014
_ROWS_PER_INSERT = 500  # 5,000 parameters, well under SQLite's limit of 32,766


def database_url_for(database_url: str | None, sqlite_path: Path) -> str:
    """The SQLAlchemy URL for a ``TICKET_ROUTER_DATABASE_URL`` value (None means embedded SQLite)."""
    if not database_url:
        return f"sqlite:///{sqlite_path}"
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


class Store:
    """All persistent state besides model artifacts; thread-safe, blocking calls."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The audit insert is the hot write: compiled once for this dialect and executed with
        # plain parameter rows, skipping SQLAlchemy's per-row processing.
        compiled = decisions.insert().compile(dialect=engine.dialect)
        self._insert_decisions_sql = str(compiled)
        self._insert_decisions_keys: tuple[str, ...] | None = (
            tuple(compiled.positiontup) if compiled.positional and compiled.positiontup else None
        )
        head, _, values = self._insert_decisions_sql.partition(" VALUES ")
        self._insert_head, self._insert_values = head, values

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect, configure and migrate; raise ``StoreError`` when the database is unusable."""
        try:
            if url.startswith("sqlite"):
                path = url.removeprefix("sqlite:///")
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = sa.create_engine(
                    url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=8, max_overflow=8
                )
                _configure_sqlite(engine)
            else:
                engine = sa.create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)
            store = cls(engine)
            store.migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {exc.__class__.__name__}: {exc}") from None
        return store

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction that holds the database's write lock from its start.

        Integrity errors pass through (callers use them to detect conflicts); any other database
        failure becomes a ``StoreError``.
        """
        try:
            with self.engine.connect() as conn:
                conn = conn.execution_options(immediate=True)
                with conn.begin():
                    yield conn
        except sa.exc.IntegrityError:
            raise
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc.__class__.__name__}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reading; a database failure becomes a ``StoreError``."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc.__class__.__name__}") from exc

    def migrate(self) -> list[int]:
        """Apply pending migrations once, even with several processes starting together."""
        applied_now: list[int] = []
        with self._write() as conn:
            if not self.is_sqlite:
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            schema_migrations.create(conn, checkfirst=True)
            done = {row[0] for row in conn.execute(sa.select(schema_migrations.c.version))}
            for version, name, apply in MIGRATIONS:
                if version in done:
                    continue
                apply(conn)
                conn.execute(schema_migrations.insert().values(version=version, name=name, applied_at=time.time()))
                applied_now.append(version)
        return applied_now

    def schema_version(self) -> int:
        """The newest applied migration."""
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0)

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers and holds our schema."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.func.max(schema_migrations.c.version)))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database unavailable: {exc.__class__.__name__}") from None

    # -- decisions ------------------------------------------------------------------------

    def add_decisions(self, records: Sequence[DecisionRecord]) -> None:
        """Insert audit rows in one transaction."""
        if not records:
            return
        rows = [_decision_row(r) for r in records]
        keys = self._insert_decisions_keys
        with self._write() as conn:
            if keys is None:  # named parameters (PostgreSQL): the driver batches executemany itself
                conn.exec_driver_sql(self._insert_decisions_sql, rows)
                return
            # Positional (SQLite): one multi-row INSERT per chunk, so the driver steps once
            # instead of once a row (each step releases and re-takes the GIL).
            for start in range(0, len(rows), _ROWS_PER_INSERT):
                chunk = rows[start : start + _ROWS_PER_INSERT]
                sql = f"{self._insert_head} VALUES {', '.join([self._insert_values] * len(chunk))}"
                conn.exec_driver_sql(sql, tuple(row[k] for row in chunk for k in keys))

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        """One audit row by id."""
        with self._read() as conn:
            row = conn.execute(sa.select(decisions).where(decisions.c.id == decision_id)).mappings().first()
        return None if row is None else _decision_from_row(row)

    def recent_decisions(self, limit: int = 100, ticket_ref: str | None = None) -> list[DecisionRecord]:
        """The newest audit rows first, optionally for one ticket."""
        query = sa.select(decisions).order_by(decisions.c.created_at.desc()).limit(limit)
        if ticket_ref is not None:
            query = query.where(decisions.c.ticket_ref == ticket_ref)
        with self._read() as conn:
            return [_decision_from_row(row) for row in conn.execute(query).mappings()]

    def count_decisions(self) -> int:
        """How many decisions the audit trail holds."""
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(decisions)).scalar() or 0)

    # -- corrections ----------------------------------------------------------------------

    def add_correction(self, record: CorrectionRecord) -> None:
        """Store one correction."""
        with self._write() as conn:
            conn.execute(corrections.insert().values(**msgspec.structs.asdict(record)))

    def get_correction(self, correction_id: str) -> CorrectionRecord | None:
        """One correction by id."""
        with self._read() as conn:
            row = conn.execute(sa.select(corrections).where(corrections.c.id == correction_id)).mappings().first()
        return None if row is None else CorrectionRecord(**dict(row))

    def list_corrections(self, limit: int = 100, before: str | None = None) -> list[CorrectionRecord]:
        """Corrections, newest first; ``before`` is the id of the last one of the previous page."""
        query = sa.select(corrections).order_by(corrections.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(corrections.c.id < before)
        with self._read() as conn:
            return [CorrectionRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def all_corrections(self) -> list[CorrectionRecord]:
        """Every correction, oldest first (for training)."""
        with self._read() as conn:
            rows = conn.execute(sa.select(corrections).order_by(corrections.c.id)).mappings()
            return [CorrectionRecord(**dict(row)) for row in rows]

    # -- training jobs --------------------------------------------------------------------

    def create_job(self, kind: str, options: dict[str, Any], requested_by: str | None) -> JobRecord:
        """Queue a job; ``JobConflictError`` while another one is queued or running."""
        record = JobRecord(
            id=new_id(), kind=kind, status="queued", created_at=time.time(), options=options, requested_by=requested_by
        )
        row = msgspec.structs.asdict(record)
        row["options"] = msgspec.json.encode(options).decode()
        row["active_slot"] = 1
        try:
            with self._write() as conn:
                conn.execute(jobs.insert().values(**row))
        except sa.exc.IntegrityError:
            raise JobConflictError("a training is already queued or running") from None
        return record

    def update_job(self, job_id: str, **values: Any) -> None:
        """Change a job's status, timestamps, result or error."""
        if "result" in values and values["result"] is not None:
            values["result"] = msgspec.json.encode(values["result"]).decode()
        if values.get("status") in {"succeeded", "failed"}:
            values["active_slot"] = None
        with self._write() as conn:
            conn.execute(jobs.update().where(jobs.c.id == job_id).values(**values))

    def get_job(self, job_id: str) -> JobRecord | None:
        """One job by id."""
        with self._read() as conn:
            row = conn.execute(sa.select(jobs).where(jobs.c.id == job_id)).mappings().first()
        return None if row is None else _job_from_row(row)

    def fail_stale_jobs(self, older_than: float) -> int:
        """Mark queued or running jobs whose heartbeat stopped before ``older_than`` as failed."""
        stale = sa.and_(
            jobs.c.active_slot.is_not(None),
            sa.func.coalesce(jobs.c.heartbeat_at, jobs.c.created_at) < older_than,
        )
        with self._write() as conn:
            result = conn.execute(
                jobs.update()
                .where(stale)
                .values(
                    status="failed",
                    active_slot=None,
                    finished_at=time.time(),
                    error="interrupted: the process running it stopped",
                )
            )
        return int(result.rowcount or 0)

    # -- shadow decisions -----------------------------------------------------------------

    def add_shadow_decisions(self, records: Sequence[ShadowRecord]) -> None:
        """Record what a shadowed candidate decided."""
        if records:
            with self._write() as conn:
                conn.execute(shadow_decisions.insert(), [msgspec.structs.asdict(r) for r in records])

    def shadow_comparisons(self, version: str) -> list[ShadowComparison]:
        """Every shadowed decision of ``version`` beside the active decision and the latest correction."""
        latest = (
            sa.select(corrections.c.decision_id, sa.func.max(corrections.c.id).label("last"))
            .where(corrections.c.decision_id.is_not(None))
            .group_by(corrections.c.decision_id)
            .subquery()
        )
        corrected = corrections.alias("corrected")
        query = (
            sa.select(
                decisions.c.id,
                decisions.c.team,
                shadow_decisions.c.team.label("shadow_team"),
                corrected.c.team.label("fixed"),
            )
            .join(decisions, decisions.c.id == shadow_decisions.c.decision_id)
            .outerjoin(latest, latest.c.decision_id == decisions.c.id)
            .outerjoin(corrected, corrected.c.id == latest.c.last)
            .where(shadow_decisions.c.model_version == version)
        )
        with self._read() as conn:
            return [ShadowComparison(row[0], row[1], row[2], row[3]) for row in conn.execute(query)]

    # -- model pointers (shared by replicas) -------------------------------------------------

    def pointer(self, name: str) -> str | None:
        """The version a pointer ('active' or 'shadow') names."""
        with self._read() as conn:
            row = conn.execute(sa.select(model_pointers.c.version).where(model_pointers.c.name == name)).first()
        return None if row is None else row[0]

    def set_pointer(self, name: str, version: str | None, event: bytes | None = None) -> None:
        """Point ``name`` at ``version``; with ``event``, record the activation in the same transaction."""
        with self._write() as conn:
            conn.execute(
                model_pointers.update()
                .where(model_pointers.c.name == name)
                .values(version=version, updated_at=time.time())
            )
            if event is not None:
                conn.execute(activations.insert().values(id=new_id(), event=event.decode()))

    def activation_events(self) -> list[bytes]:
        """Every recorded activation, oldest first, as JSON."""
        with self._read() as conn:
            rows = conn.execute(sa.select(activations.c.event).order_by(activations.c.id))
            return [row[0].encode() for row in rows]

    def record_model_version(self, version: str, created_at: str, manifest: bytes) -> None:
        """Keep a version's manifest where every replica can query it."""
        with self._write() as conn:
            exists = conn.execute(
                sa.select(model_versions.c.version).where(model_versions.c.version == version)
            ).first()
            if exists is None:
                conn.execute(
                    model_versions.insert().values(version=version, created_at=created_at, manifest=manifest.decode())
                )

    @property
    def is_shared(self) -> bool:
        """Whether several machines may use this database (PostgreSQL), rather than one (SQLite)."""
        return not self.is_sqlite

    # -- webhook deliveries -----------------------------------------------------------------

    def get_delivery(self, tracker: str, delivery_id: str) -> DeliveryRecord | None:
        """A delivery already processed, if any."""
        query = sa.select(webhook_deliveries).where(
            webhook_deliveries.c.tracker == tracker, webhook_deliveries.c.delivery_id == delivery_id
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else DeliveryRecord(**dict(row))

    def claim_delivery(self, tracker: str, delivery_id: str, stale_after: float) -> bool:
        """Claim a delivery before working on it: True for exactly one caller, here or on another replica.

        The claim is a row with outcome ``processing``. A claim older than ``stale_after``
        seconds belonged to a process that died, and may be taken over.
        """
        now = time.time()
        try:
            with self._write() as conn:
                conn.execute(
                    webhook_deliveries.insert().values(
                        tracker=tracker, delivery_id=delivery_id, received_at=now, event="", outcome="processing"
                    )
                )
        except sa.exc.IntegrityError:
            key = sa.and_(
                webhook_deliveries.c.tracker == tracker,
                webhook_deliveries.c.delivery_id == delivery_id,
                webhook_deliveries.c.outcome == "processing",
                webhook_deliveries.c.received_at < now - stale_after,
            )
            with self._write() as conn:
                taken = conn.execute(webhook_deliveries.update().where(key).values(received_at=now))
            return bool(taken.rowcount)
        return True

    def release_delivery(self, tracker: str, delivery_id: str) -> None:
        """Give up a claim (the work failed), so that a redelivery can do it."""
        with self._write() as conn:
            conn.execute(
                webhook_deliveries.delete().where(
                    webhook_deliveries.c.tracker == tracker,
                    webhook_deliveries.c.delivery_id == delivery_id,
                    webhook_deliveries.c.outcome == "processing",
                )
            )

    def record_delivery(
        self,
        delivery: DeliveryRecord,
        writeback: WritebackRecord | None = None,
        correction: CorrectionRecord | None = None,
        supersede: str | None = None,
    ) -> bool:
        """Store a delivery with what it caused, in one transaction; False when it was already stored.

        A delivery claimed earlier (``claim_delivery``) is completed; otherwise its primary key
        decides: a redelivery racing the original (here or on another replica) fails its insert,
        and then neither its write-back nor its correction is kept. ``supersede`` names a ticket
        whose open write-backs a person's label made moot.
        """
        now = time.time()
        values = msgspec.structs.asdict(delivery)
        claimed = sa.and_(
            webhook_deliveries.c.tracker == delivery.tracker,
            webhook_deliveries.c.delivery_id == delivery.delivery_id,
            webhook_deliveries.c.outcome == "processing",
        )
        try:
            with self._write() as conn:
                completed = conn.execute(webhook_deliveries.update().where(claimed).values(**values))
                if not completed.rowcount:
                    conn.execute(webhook_deliveries.insert().values(**values))
                if supersede is not None:
                    conn.execute(
                        writebacks.update()
                        .where(writebacks.c.ticket_ref == supersede, writebacks.c.status.in_(WRITEBACK_OPEN))
                        .values(status="superseded", updated_at=now, next_attempt_at=None, last_error=delivery.reason)
                    )
                if writeback is not None:
                    conn.execute(writebacks.insert().values(**msgspec.structs.asdict(writeback)))
                if correction is not None:
                    conn.execute(corrections.insert().values(**msgspec.structs.asdict(correction)))
        except sa.exc.IntegrityError:
            return False
        return True

    def list_deliveries(
        self, limit: int = 100, tracker: str | None = None, outcome: str | None = None
    ) -> list[DeliveryRecord]:
        """Deliveries, newest first."""
        query = sa.select(webhook_deliveries).order_by(webhook_deliveries.c.received_at.desc()).limit(limit)
        if tracker is not None:
            query = query.where(webhook_deliveries.c.tracker == tracker)
        if outcome is not None:
            query = query.where(webhook_deliveries.c.outcome == outcome)
        with self._read() as conn:
            return [DeliveryRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def prune_deliveries(self, before: float) -> int:
        """Forget deliveries received before ``before`` (epoch seconds); returns how many."""
        with self._write() as conn:
            result = conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.received_at < before))
        return int(result.rowcount or 0)

    # -- write-backs ----------------------------------------------------------------------

    def our_labels(self, tracker: str, ticket_ref: str) -> set[str]:
        """Labels we wrote, are writing or will retry on a ticket (casefolded)."""
        query = sa.select(writebacks.c.label).where(
            writebacks.c.tracker == tracker,
            writebacks.c.ticket_ref == ticket_ref,
            writebacks.c.status.in_(WRITEBACK_OURS),
            writebacks.c.label.is_not(None),
        )
        with self._read() as conn:
            return {str(row.label).casefold() for row in conn.execute(query)}

    def get_writeback(self, writeback_id: str) -> WritebackRecord | None:
        """One write-back by id."""
        with self._read() as conn:
            row = conn.execute(sa.select(writebacks).where(writebacks.c.id == writeback_id)).mappings().first()
        return None if row is None else WritebackRecord(**dict(row))

    def list_writebacks(
        self, limit: int = 100, status: str | None = None, ticket_ref: str | None = None
    ) -> list[WritebackRecord]:
        """Write-backs, newest first."""
        query = sa.select(writebacks).order_by(writebacks.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(writebacks.c.status == status)
        if ticket_ref is not None:
            query = query.where(writebacks.c.ticket_ref == ticket_ref)
        with self._read() as conn:
            return [WritebackRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def claim_writebacks(
        self, now: float, lease: float, limit: int = 50, ids: Sequence[str] | None = None
    ) -> list[WritebackRecord]:
        """Claim due write-backs for ``lease`` seconds, oldest first; a row is claimed by one caller only.

        Each claim is a conditional UPDATE, so two processes (or replicas) that pick the same
        candidate cannot both win it.
        """
        due = sa.and_(
            writebacks.c.status.in_(WRITEBACK_OPEN),
            writebacks.c.next_attempt_at.is_not(None),
            writebacks.c.next_attempt_at <= now,
            sa.or_(writebacks.c.claimed_until.is_(None), writebacks.c.claimed_until < now),
        )
        query = sa.select(writebacks.c.id).where(due).order_by(writebacks.c.id).limit(limit)
        if ids is not None:
            query = query.where(writebacks.c.id.in_(list(ids)))
        claimed: list[WritebackRecord] = []
        with self._read() as conn:
            candidates = [row.id for row in conn.execute(query)]
        for writeback_id in candidates:
            with self._write() as conn:
                result = conn.execute(
                    writebacks.update().where(writebacks.c.id == writeback_id, due).values(claimed_until=now + lease)
                )
                if result.rowcount == 1:
                    row = conn.execute(sa.select(writebacks).where(writebacks.c.id == writeback_id)).mappings().one()
                    claimed.append(WritebackRecord(**dict(row)))
        return claimed

    def writeback_progress(self, writeback_id: str, request: str) -> None:
        """Keep only the requests still to make, so a retry does not repeat the ones that succeeded."""
        with self._write() as conn:
            changed = writebacks.update().where(writebacks.c.id == writeback_id)
            conn.execute(changed.values(request=request, updated_at=time.time()))

    def finish_writeback(
        self,
        writeback_id: str,
        status: str,
        attempts: int,
        last_error: str | None = None,
        next_attempt_at: float | None = None,
    ) -> None:
        """Record an attempt's result and release the claim."""
        with self._write() as conn:
            conn.execute(
                writebacks.update()
                .where(writebacks.c.id == writeback_id)
                .values(
                    status=status,
                    attempts=attempts,
                    last_error=last_error,
                    next_attempt_at=next_attempt_at,
                    claimed_until=None,
                    updated_at=time.time(),
                )
            )

    def release_writebacks(self, ids: Sequence[str]) -> None:
        """Give up claims without recording an attempt (on shutdown)."""
        if not ids:
            return
        with self._write() as conn:
            conn.execute(writebacks.update().where(writebacks.c.id.in_(list(ids))).values(claimed_until=None))

    def retry_writebacks(self, now: float, ids: Sequence[str] | None = None) -> list[str]:
        """Make failed write-backs (all, or those in ``ids``) due now; returns their ids."""
        query = sa.select(writebacks.c.id).where(writebacks.c.status == "failed")
        if ids is not None:
            query = query.where(writebacks.c.id.in_(list(ids)))
        with self._write() as conn:
            chosen = [row.id for row in conn.execute(query)]
            if chosen:
                conn.execute(
                    writebacks.update()
                    .where(writebacks.c.id.in_(chosen), writebacks.c.status == "failed")
                    .values(status="pending", next_attempt_at=now, updated_at=now)
                )
        return chosen


def _job_from_row(row: Any) -> JobRecord:
    values = dict(row)
    values.pop("active_slot", None)
    values["options"] = msgspec.json.decode(values["options"])
    if values["result"] is not None:
        values["result"] = msgspec.json.decode(values["result"])
    return JobRecord(**values)


def _decision_row(record: DecisionRecord) -> dict[str, Any]:
    row = msgspec.structs.asdict(record)
    row["scores"] = msgspec.json.encode(record.scores).decode()
    return row


def _decision_from_row(row: Any) -> DecisionRecord:
    values = dict(row)
    values["scores"] = msgspec.json.decode(values["scores"])
    values["abstained"] = bool(values["abstained"])
    return DecisionRecord(**values)


def _configure_sqlite(engine: Engine) -> None:
    """WAL, sane durability and explicit transactions (the driver's implicit ones are off)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("immediate") else "BEGIN")
