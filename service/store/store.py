"""The store: all persistent state besides model artifacts, one repository per group of tables."""

from __future__ import annotations

from types import TracebackType

from service.settings import Settings
from service.store.audit import AuditTrail
from service.store.corrections import Corrections
from service.store.database import Database, database_url_for
from service.store.jobs import Jobs
from service.store.models import ModelRows
from service.store.outbox import Outbox
from service.store.quality import Outcomes
from service.store.questions import Questions
from service.store.triage import TriageQueue

__all__ = ["Store"]


class Store:
    """The database with its repositories: ``audit``, ``corrections``, ``jobs``, ``models``, ``outbox``,
    ``outcomes``, ``questions`` and ``triage``.

    Open it from settings with ``Store.for_settings`` (the one way the service, the CLI and the
    trainer do), or from a URL with ``Store.open``; use it as a context manager to close it.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = AuditTrail(db)
        self.corrections = Corrections(db)
        self.jobs = Jobs(db)
        self.models = ModelRows(db)
        self.outbox = Outbox(db)
        self.triage = TriageQueue(db)
        self.outcomes = Outcomes(db)
        self.questions = Questions(db)

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect to ``url``, configure and migrate; ``StoreError`` when the database is unusable."""
        return cls(Database.open(url))

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        """The configured database: ``TICKET_ROUTER_DATABASE_URL``, else SQLite in the data dir."""
        return cls.open(database_url_for(settings.database_url, settings.sqlite_path))

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self.db.close()

    def ping(self) -> None:
        """Raise ``StoreError`` unless the database answers and holds our schema."""
        self.db.ping()

    def schema_version(self) -> int:
        """The newest applied migration."""
        return self.db.schema_version()

    @property
    def is_shared(self) -> bool:
        """Whether several machines may use this database (PostgreSQL), rather than one (SQLite)."""
        return not self.db.is_sqlite
