"""Archival consolidation before the model's turn: exact duplicates (normalized text) and near duplicates
(embeddings at least ``near_duplicate_similarity`` alike) are removed deterministically."""

from __future__ import annotations

from o.store import sleeptime as sleeptime_store
from o.store.db import Database


def dedupe_archival(db: Database, agent_id: str) -> int:
    """Delete passages whose normalized text repeats an older passage's; returns how many went."""
    with db.transaction() as conn:
        return sleeptime_store.delete_exact_duplicates(conn, agent_id)


def dedupe_near(db: Database, agent_id: str, *, similarity: float, window: int) -> int:
    """Delete the newer of two recent passages whose embeddings are at least ``similarity`` alike (cosine)."""
    with db.transaction() as conn:
        return sleeptime_store.delete_near_duplicates(conn, agent_id, similarity=similarity, window=window)
