"""SQL for steps: one LLM call and the tool calls it asked for, keyed by (run_id, step_index)."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import rows
from o.store.db import Conn

_JSON = {"usage", "tool_calls", "approvals"}
UPDATABLE = {
    "status",
    "usage",
    "stop_reason",
    "error",
    "completed_at",
    "tool_calls",
    "approvals",
    "next_action",
    "message_id",
    "model",
}


def insert(conn: Conn, step: dict[str, Any]) -> dict[str, Any] | None:
    """Insert a step; None when a step with the same (run_id, step_index) exists (a replay)."""
    return rows.insert(conn, "steps", step, json_columns=_JSON, on_conflict="DO NOTHING")


def get(conn: Conn, step_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return conn.execute("SELECT * FROM steps WHERE id = %s" + lock, (step_id,)).fetchone()


def by_index(conn: Conn, run_id: str, step_index: int) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM steps WHERE run_id = %s AND step_index = %s", (run_id, step_index)).fetchone()


def for_run(conn: Conn, run_id: str) -> list[dict[str, Any]]:
    return conn.execute("SELECT * FROM steps WHERE run_id = %s ORDER BY step_index", (run_id,)).fetchall()


def update(conn: Conn, step_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes]
    values = [Jsonb(v) if c in _JSON else v for c, v in changes.items()]
    row = conn.execute(
        sql.SQL("UPDATE steps SET {} WHERE id = %s RETURNING *").format(sql.SQL(", ").join(assignments)),
        (*values, step_id),
    ).fetchone()
    assert row is not None
    return row
