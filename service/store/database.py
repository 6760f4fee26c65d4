"""The database connection: opening SQLite or PostgreSQL, transactions, and migrations under a lock.

One set of SQLAlchemy Core queries serves both backends. Migrations run at start-up under a
lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so several processes
starting at once apply each migration exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from service.store.schema import MIGRATIONS, schema_migrations

__all__ = ["Database", "StoreDataError", "StoreError", "database_url_for"]

_PG_MIGRATION_LOCK = 7_361_227_014


class StoreError(Exception):
    """Raised when the database cannot be reached or is in an unusable state."""


class StoreDataError(StoreError):
    """Raised when the database refuses a value (too long for its column, say): the data's fault, not an outage."""


def database_url_for(database_url: str | None, sqlite_path: Path) -> str:
    """The SQLAlchemy URL for a ``TICKET_ROUTER_DATABASE_URL`` value (None means embedded SQLite)."""
    if not database_url:
        return f"sqlite:///{sqlite_path}"
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix) :]
    return database_url


class Database:
    """An engine with the two kinds of transaction every repository uses; thread-safe, blocking."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, url: str) -> Database:
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
            database = cls(engine)
            database.migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"cannot open the database: {exc.__class__.__name__}: {exc}") from None
        return database

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def write(self) -> Iterator[Connection]:
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
        except sa.exc.DataError as exc:
            raise StoreDataError(f"the database refused a value: {_first_line(exc.orig)}") from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database write failed: {exc.__class__.__name__}") from exc

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reading; a database failure becomes a ``StoreError``."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database read failed: {exc.__class__.__name__}") from exc

    def migrate(self) -> list[int]:
        """Apply pending migrations once, even with several processes starting together."""
        applied_now: list[int] = []
        with self.write() as conn:
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
        with self.read() as conn:
            return int(conn.execute(sa.select(sa.func.max(schema_migrations.c.version))).scalar() or 0)

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers and holds our schema."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.select(sa.func.max(schema_migrations.c.version)))
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"database unavailable: {exc.__class__.__name__}") from None


def _first_line(error: BaseException | None) -> str:
    """The driver's message, first line only (PostgreSQL adds the statement and parameters after it)."""
    text = str(error or "").strip()
    return text.splitlines()[0][:200] if text else "invalid value"


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
