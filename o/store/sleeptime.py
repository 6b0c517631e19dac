"""SQL for sleep-time passes: claiming and recording a pass, what it reads, and archival de-duplication."""

from __future__ import annotations

from o.store.db import Conn


def through_seq(conn: Conn, agent_id: str) -> int:
    """The newest message seq a completed pass has read (0 before the first)."""
    row = conn.execute(
        "SELECT coalesce(max(through_seq), 0) AS s FROM sleeptime_passes WHERE agent_id = %s AND status = 'completed'",
        (agent_id,),
    ).fetchone()
    return int(row["s"]) if row else 0
