"""SQL for conversations: the threads of one agent, each with its own in-context messages.

The agent's own history (Letta's ``default`` conversation) has no row here: its messages and runs
have ``conversation_id`` NULL. A deleted conversation keeps its row (``deleted_at``) so its messages
stay in the agent's recall; every read here leaves it out.
"""

from __future__ import annotations

from typing import Any, Literal

from psycopg import sql

from o.store import rows
from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

_JSON = {"model_settings", "llm_overrides"}
UPDATABLE = {
    "summary",
    "description",
    "model",
    "model_settings",
    "context_window_limit",
    "llm_overrides",
    "archived",
    "archived_at",
    "last_message_at",
}
ArchiveStatus = Literal["unarchived", "archived", "all"]


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    return rows.insert_one(conn, "conversations", row, json_columns=_JSON)


def get(conn: Conn, organization_id: str, conversation_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return conn.execute(
        "SELECT * FROM conversations WHERE id = %s AND organization_id = %s AND deleted_at IS NULL" + lock,
        (conversation_id, organization_id),
    ).fetchone()


def update(conn: Conn, conversation_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments, values = rows.assignments(changes, json_columns=_JSON)
    assignments.append(sql.SQL("updated_at = now()"))
    row = conn.execute(
        sql.SQL("UPDATE conversations SET {} WHERE id = %s RETURNING *").format(sql.SQL(", ").join(assignments)),
        (*values, conversation_id),
    ).fetchone()
    assert row is not None
    return row


def mark_deleted(conn: Conn, conversation_id: str) -> None:
    conn.execute("UPDATE conversations SET deleted_at = now(), updated_at = now() WHERE id = %s", (conversation_id,))


def touch_last_message(conn: Conn, conversation_id: str) -> None:
    conn.execute("UPDATE conversations SET last_message_at = now() WHERE id = %s", (conversation_id,))


def list_page(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    agent_id: str | None = None,
    archive_status: ArchiveStatus = "unarchived",
    summary_search: str | None = None,
) -> list[dict[str, Any]]:
    """The organization's conversations (of one agent when named); hidden ones never, archived ones as asked."""
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals("agent_id", agent_id)
        .contains("summary", summary_search)
    )
    where.conditions.append(sql.SQL("deleted_at IS NULL AND NOT hidden"))
    if archive_status != "all":
        where.conditions.append(sql.SQL("archived" if archive_status == "archived" else "NOT archived"))
    return fetch_page(conn, table="conversations", scope=where.clause(), scope_params=where.params, page=page)


def in_context_ids(conn: Conn, agent_id: str, conversation_id: str | None) -> list[str]:
    """The ids of a conversation's in-context messages, in the order the model reads them."""
    found = conn.execute(
        """SELECT id FROM messages WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s AND in_context
           ORDER BY (role = 'system') DESC, seq""",
        (agent_id, conversation_id),
    ).fetchall()
    return [r["id"] for r in found]


def copy_messages(conn: Conn, message_ids: list[str], conversation_id: str) -> list[str]:
    """Copy messages (in order) into ``conversation_id`` as new in-context rows; the new ids.

    The copies belong to no run or step (the originals keep those), and say what they copy.
    """
    copied = conn.execute(
        """INSERT INTO messages (id, organization_id, agent_id, role, content, text, name, tool_calls,
                                 tool_call_id, tool_returns, otid, sender_id, group_id, in_context, metadata,
                                 created_at, conversation_id)
           SELECT 'message-' || gen_random_uuid(), organization_id, agent_id, role, content, text, name, tool_calls,
                  tool_call_id, tool_returns, otid, sender_id, group_id, true,
                  metadata || jsonb_build_object('forked_from', id), created_at, %s
           FROM messages WHERE id = ANY(%s) ORDER BY seq
           RETURNING id, seq""",
        (conversation_id, message_ids),
    ).fetchall()
    return [r["id"] for r in sorted(copied, key=lambda r: r["seq"])]


def active_runs(conn: Conn, agent_id: str, conversation_id: str | None) -> list[str]:
    """The ids of a conversation's runs that have not ended, oldest first."""
    found = conn.execute(
        """SELECT id FROM runs WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s
             AND next_action IN ('step', 'tools', 'approval') ORDER BY created_at""",
        (agent_id, conversation_id),
    ).fetchall()
    return [r["id"] for r in found]


def latest_run(conn: Conn, agent_id: str, conversation_id: str | None, *, otid: str | None = None) -> str | None:
    """The conversation's run to follow: its newest active one, else its newest (the one whose input
    carried ``otid`` when given)."""
    if otid is not None:
        found = conn.execute(
            """SELECT run_id FROM messages WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s
                 AND otid = %s AND run_id IS NOT NULL ORDER BY seq DESC LIMIT 1""",
            (agent_id, conversation_id, otid),
        ).fetchone()
        return found["run_id"] if found else None
    found = conn.execute(
        """SELECT id FROM runs WHERE agent_id = %s AND conversation_id IS NOT DISTINCT FROM %s
           ORDER BY next_action IN ('step', 'tools', 'approval') DESC, created_at DESC LIMIT 1""",
        (agent_id, conversation_id),
    ).fetchone()
    return found["id"] if found else None
