"""Persistent state in SQLite (default) or PostgreSQL; see ``store.Store``."""

from service.store.database import StoreDataError, StoreError, database_url_for
from service.store.jobs import JobConflictError
from service.store.records import (
    CorrectionRecord,
    DecisionRecord,
    DeliveryRecord,
    JobRecord,
    OutcomeRecord,
    QuestionRecord,
    ShadowComparison,
    ShadowRecord,
    TriageItem,
    TriageRecord,
    WritebackRecord,
    new_id,
)
from service.store.store import Store

__all__ = [
    "CorrectionRecord",
    "DecisionRecord",
    "DeliveryRecord",
    "JobConflictError",
    "JobRecord",
    "OutcomeRecord",
    "QuestionRecord",
    "ShadowComparison",
    "ShadowRecord",
    "Store",
    "StoreDataError",
    "StoreError",
    "TriageItem",
    "TriageRecord",
    "WritebackRecord",
    "database_url_for",
    "new_id",
]
