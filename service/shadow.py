"""The shadow report: how a candidate run beside the active model compares with it on the same tickets."""

from __future__ import annotations

from collections import Counter

from model.registry import Registry
from service.schemas import ShadowReport
from service.store import Store

__all__ = ["shadow_report"]


def shadow_report(store: Store, registry: Registry, version: str) -> ShadowReport:
    """Agreement with the active model and, where people corrected a ticket, which of the two was right."""
    rows = store.audit.shadow_comparisons(version)
    agreed = Counter(row.active_team == row.shadow_team for row in rows)
    corrected = [row for row in rows if row.corrected_team is not None]
    return ShadowReport(
        version=version,
        running=registry.shadow_version() == version,
        decisions=len(rows),
        agreement=(agreed[True] / len(rows)) if rows else None,
        corrected=len(corrected),
        active_right=sum(1 for row in corrected if row.corrected_team == row.active_team),
        shadow_right=sum(1 for row in corrected if row.corrected_team == row.shadow_team),
    )
