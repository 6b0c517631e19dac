"""SQL for steps: one LLM call and the tool calls it asked for, keyed by (run_id, step_index)."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import rows
from o.store.db import Conn
from o.store.pages import Page, fetch_page
from o.store.records import NextAction, Step, StopReason

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


def insert(conn: Conn, step: dict[str, Any]) -> Step | None:
    """Insert a step; None when a step with the same (run_id, step_index) exists (a replay)."""
    row = rows.insert(conn, "steps", step, json_columns=_JSON, on_conflict="DO NOTHING")
    return Step.of(row) if row is not None else None


def get(conn: Conn, step_id: str, *, for_update: bool = False) -> Step | None:
    lock = " FOR UPDATE" if for_update else ""
    row = conn.execute("SELECT * FROM steps WHERE id = %s" + lock, (step_id,)).fetchone()
    return Step.of(row) if row is not None else None


def by_index(conn: Conn, run_id: str, step_index: int) -> Step | None:
    row = conn.execute("SELECT * FROM steps WHERE run_id = %s AND step_index = %s", (run_id, step_index)).fetchone()
    return Step.of(row) if row is not None else None


def page_for_run(conn: Conn, organization_id: str, run_id: str, page: Page) -> list[Step]:
    """One page of a run's steps, in the order the loop took them."""
    rows = fetch_page(
        conn,
        table="steps",
        key="step_index",
        scope=sql.SQL("organization_id = %s AND run_id = %s"),
        scope_params=(organization_id, run_id),
        page=page,
    )
    return [Step.of(row) for row in rows]


def update(conn: Conn, step_id: str, changes: dict[str, Any]) -> Step:
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
    return Step.of(row)


def complete(conn: Conn, step_id: str, next_action: NextAction, stop_reason: StopReason | None) -> bool:
    """Record the loop's decision on a step; False when it was completed already (a late duplicate)."""
    row = conn.execute(
        """UPDATE steps SET status = 'completed', next_action = %s, stop_reason = %s, completed_at = now()
           WHERE id = %s AND status <> 'completed' RETURNING id""",
        (next_action, stop_reason, step_id),
    ).fetchone()
    return row is not None
