"""SQL for the message history (recall memory). ``seq`` orders an agent's messages."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.store import rows
from o.store.db import Conn
from o.store.pages import Page, fetch_page

_JSON = {"content", "tool_calls", "tool_returns", "metadata"}
COLUMNS = (
    "id",
    "organization_id",
    "agent_id",
    "role",
    "content",
    "text",
    "name",
    "tool_calls",
    "tool_call_id",
    "tool_returns",
    "step_id",
    "run_id",
    "step_position",
    "otid",
    "sender_id",
    "group_id",
    "in_context",
    "metadata",
)

# What a history page shows: not ``*``, which would carry each message's search columns (an
# embedding is thousands of bytes, parsed into an array per row) to a reader that never uses them.
_LISTED = sql.SQL(", ").join(sql.Identifier(c) for c in ("seq", *COLUMNS, "created_at"))


def insert_many(conn: Conn, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert messages in order. A message whose (step_id, step_position) exists is skipped,
    so replaying a step after a crash writes nothing twice; the stored rows are returned."""
    stored: list[dict[str, Any]] = []
    for message in messages:
        row = rows.insert(
            conn,
            "messages",
            {c: message[c] for c in COLUMNS if c in message},
            json_columns=_JSON,
            on_conflict="(step_id, step_position) DO NOTHING",
        )
        if row is None:
            row = conn.execute(
                "SELECT * FROM messages WHERE step_id = %s AND step_position = %s",
                (message["step_id"], message["step_position"]),
            ).fetchone()
        assert row is not None
        stored.append(row)
    return stored


def list_page(
    conn: Conn, organization_id: str, agent_id: str, page: Page, *, run_id: str | None = None
) -> list[dict[str, Any]]:
    conds = [sql.SQL("organization_id = %s AND agent_id = %s")]
    params: list[Any] = [organization_id, agent_id]
    if run_id is not None:
        conds.append(sql.SQL("run_id = %s"))
        params.append(run_id)
    return fetch_page(
        conn,
        table="messages",
        key="seq",
        columns=_LISTED,
        scope=sql.SQL(" AND ").join(conds),
        scope_params=tuple(params),
        page=page,
    )


def in_context(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM messages WHERE agent_id = %s AND in_context ORDER BY seq", (agent_id,)
    ).fetchall()


def count(conn: Conn, agent_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM messages WHERE agent_id = %s", (agent_id,)).fetchone()
    return int(row["n"]) if row else 0


def get(conn: Conn, message_id: str) -> dict[str, Any] | None:
    return conn.execute("SELECT * FROM messages WHERE id = %s", (message_id,)).fetchone()


def last_seq(conn: Conn) -> int:
    """The newest message's position in the history of every agent (0 when there is none)."""
    row = conn.execute("SELECT coalesce(max(seq), 0) AS s FROM messages").fetchone()
    return int(row["s"]) if row else 0
