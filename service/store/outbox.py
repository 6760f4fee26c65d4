"""The webhook outbox: deliveries (for de-duplication) and the write-backs they plan.

A delivery is stored with everything it caused (its write-back, or a correction) in one
transaction, so the answer a tracker gets is always on record. Write-backs are claimed with a
lease (a conditional UPDATE) so that several processes or replicas never send the same one
twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import msgspec
import sqlalchemy as sa

from service.store.database import Database
from service.store.records import WRITEBACK_OPEN, WRITEBACK_OURS, CorrectionRecord, DeliveryRecord, WritebackRecord
from service.store.schema import corrections, webhook_deliveries, webhook_fingerprints, writebacks
from service.store.triage import resolve

__all__ = ["Outbox"]


class Outbox:
    """Webhook deliveries and write-backs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- webhook deliveries -----------------------------------------------------------------

    def get_delivery(self, tracker: str, delivery_id: str) -> DeliveryRecord | None:
        """A delivery already processed, if any."""
        query = sa.select(webhook_deliveries).where(
            webhook_deliveries.c.tracker == tracker, webhook_deliveries.c.delivery_id == delivery_id
        )
        with self.db.read() as conn:
            row = conn.execute(query).mappings().first()
        return None if row is None else DeliveryRecord(**dict(row))

    def claim_delivery(self, tracker: str, delivery_id: str, stale_after: float) -> bool:
        """Claim a delivery before working on it: True for exactly one caller, here or on another replica.

        The claim is a row with outcome ``processing``. A claim older than ``stale_after``
        seconds belonged to a process that died, and may be taken over.
        """
        now = time.time()
        try:
            with self.db.write() as conn:
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
            with self.db.write() as conn:
                taken = conn.execute(webhook_deliveries.update().where(key).values(received_at=now))
            return bool(taken.rowcount)
        return True

    def release_delivery(self, tracker: str, delivery_id: str) -> None:
        """Give up a claim (the work failed), so that a redelivery can do it."""
        with self.db.write() as conn:
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
            with self.db.write() as conn:
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
                    resolve(conn, correction)
        except sa.exc.IntegrityError:
            return False
        return True

    def claim_fingerprint(self, tracker: str, fingerprint: str, delivery_id: str, now: float, window: float) -> str:
        """Claim a delivery's content for ``delivery_id``; returns the delivery id that holds it.

        That is ``delivery_id`` itself unless another delivery claimed the same content less than
        ``window`` seconds ago (a replay). Atomic across processes and replicas, like deliveries.
        """
        key = sa.and_(webhook_fingerprints.c.tracker == tracker, webhook_fingerprints.c.fingerprint == fingerprint)
        try:
            with self.db.write() as conn:
                conn.execute(
                    webhook_fingerprints.insert().values(
                        tracker=tracker, fingerprint=fingerprint, delivery_id=delivery_id, received_at=now
                    )
                )
            return delivery_id
        except sa.exc.IntegrityError:
            pass
        with self.db.write() as conn:
            stale = sa.and_(key, webhook_fingerprints.c.received_at < now - window)
            taken = conn.execute(
                webhook_fingerprints.update().where(stale).values(delivery_id=delivery_id, received_at=now)
            )
            if taken.rowcount:
                return delivery_id
            holder = conn.execute(sa.select(webhook_fingerprints.c.delivery_id).where(key)).scalar()
        return str(holder) if holder is not None else delivery_id

    def release_fingerprint(self, tracker: str, fingerprint: str, delivery_id: str) -> None:
        """Give up a content claim (the work failed), so that a redelivery can do it."""
        with self.db.write() as conn:
            conn.execute(
                webhook_fingerprints.delete().where(
                    webhook_fingerprints.c.tracker == tracker,
                    webhook_fingerprints.c.fingerprint == fingerprint,
                    webhook_fingerprints.c.delivery_id == delivery_id,
                )
            )

    def list_deliveries(
        self, limit: int = 100, tracker: str | None = None, outcome: str | None = None
    ) -> list[DeliveryRecord]:
        """Deliveries, newest first."""
        query = sa.select(webhook_deliveries).order_by(webhook_deliveries.c.received_at.desc()).limit(limit)
        if tracker is not None:
            query = query.where(webhook_deliveries.c.tracker == tracker)
        if outcome is not None:
            query = query.where(webhook_deliveries.c.outcome == outcome)
        with self.db.read() as conn:
            return [DeliveryRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def prune_deliveries(self, before: float) -> int:
        """Forget deliveries received before ``before`` (epoch seconds); returns how many."""
        with self.db.write() as conn:
            result = conn.execute(webhook_deliveries.delete().where(webhook_deliveries.c.received_at < before))
            conn.execute(webhook_fingerprints.delete().where(webhook_fingerprints.c.received_at < before))
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
        with self.db.read() as conn:
            return {str(row.label).casefold() for row in conn.execute(query)}

    def get_writeback(self, writeback_id: str) -> WritebackRecord | None:
        """One write-back by id."""
        with self.db.read() as conn:
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
        with self.db.read() as conn:
            return [WritebackRecord(**dict(row)) for row in conn.execute(query).mappings()]

    def claim_writebacks(
        self,
        now: float,
        lease: float,
        limit: int = 50,
        ids: Sequence[str] | None = None,
        skip_trackers: Sequence[str] = (),
        skip_prefixes: Sequence[str] = (),
        admit: Callable[[str, str], bool] | None = None,
    ) -> list[WritebackRecord]:
        """Claim up to ``limit`` due write-backs for ``lease`` seconds, oldest first; each by one caller only.

        Rows of ``skip_trackers``, and rows whose ticket reference starts with one of
        ``skip_prefixes`` (a busy repository), are left for later; ``admit(tracker, ticket_ref)``
        may refuse more. Each claim is a conditional UPDATE, so two processes (or replicas) that
        pick the same candidate cannot both win it.
        """
        due = sa.and_(
            writebacks.c.status.in_(WRITEBACK_OPEN),
            writebacks.c.next_attempt_at.is_not(None),
            writebacks.c.next_attempt_at <= now,
            sa.or_(writebacks.c.claimed_until.is_(None), writebacks.c.claimed_until < now),
        )
        query = sa.select(writebacks.c.id, writebacks.c.tracker, writebacks.c.ticket_ref).where(due)
        if ids is not None:
            query = query.where(writebacks.c.id.in_(list(ids)))
        if skip_trackers:
            query = query.where(writebacks.c.tracker.not_in(list(skip_trackers)))
        for prefix in skip_prefixes:
            query = query.where(sa.func.substr(writebacks.c.ticket_ref, 1, len(prefix)) != prefix)
        query = query.order_by(writebacks.c.id).limit(max(4 * limit, 100))
        claimed: list[WritebackRecord] = []
        with self.db.read() as conn:
            candidates = [(row.id, row.tracker, row.ticket_ref) for row in conn.execute(query)]
        for writeback_id, tracker, ticket_ref in candidates:
            if len(claimed) >= limit:
                break
            if admit is not None and not admit(tracker, ticket_ref):
                continue
            with self.db.write() as conn:
                result = conn.execute(
                    writebacks.update().where(writebacks.c.id == writeback_id, due).values(claimed_until=now + lease)
                )
                if result.rowcount == 1:
                    row = conn.execute(sa.select(writebacks).where(writebacks.c.id == writeback_id)).mappings().one()
                    claimed.append(WritebackRecord(**dict(row)))
        return claimed

    def writeback_progress(self, writeback_id: str, request: str) -> None:
        """Keep only the requests still to make, so a retry does not repeat the ones that succeeded."""
        with self.db.write() as conn:
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
        with self.db.write() as conn:
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
        with self.db.write() as conn:
            conn.execute(writebacks.update().where(writebacks.c.id.in_(list(ids))).values(claimed_until=None))

    def retry_writebacks(self, now: float, ids: Sequence[str] | None = None) -> list[str]:
        """Make failed write-backs (all, or those in ``ids``) due now; returns their ids."""
        query = sa.select(writebacks.c.id).where(writebacks.c.status == "failed")
        if ids is not None:
            query = query.where(writebacks.c.id.in_(list(ids)))
        with self.db.write() as conn:
            chosen = [row.id for row in conn.execute(query)]
            if chosen:
                conn.execute(
                    writebacks.update()
                    .where(writebacks.c.id.in_(chosen), writebacks.c.status == "failed")
                    .values(status="pending", next_attempt_at=now, updated_at=now)
                )
        return chosen
