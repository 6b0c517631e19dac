"""SQL for folders (Letta's data sources) and which agents have them attached."""

from __future__ import annotations

from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

UPDATABLE = {"name", "description", "instructions", "metadata", "embedding_config"}
_JSON = {"metadata", "embedding_config"}


def get(conn: Conn, organization_id: str, folder_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
    return conn.execute(
        sql.SQL("SELECT * FROM folders WHERE id = %s AND organization_id = %s{}").format(lock),
        (folder_id, organization_id),
    ).fetchone()


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any] | None:
    """The new folder, or None when the organization has a folder of that name already."""
    return conn.execute(
        """INSERT INTO folders (id, organization_id, name, description, instructions, metadata, embedding_config)
           VALUES (%(id)s, %(organization_id)s, %(name)s, %(description)s, %(instructions)s, %(metadata)s,
                   %(embedding_config)s)
           ON CONFLICT (organization_id, name) DO NOTHING
           RETURNING *""",
        {**row, "metadata": Jsonb(row.get("metadata") or {}), "embedding_config": Jsonb(row["embedding_config"])},
    ).fetchone()


def update(conn: Conn, organization_id: str, folder_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """The updated folder; None when the new name is taken by another folder of the organization."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments: list[sql.Composable] = [sql.SQL("updated_at = now()")]
    values: list[Any] = []
    for column, value in changes.items():
        assignments.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        values.append(Jsonb(value) if column in _JSON else value)
    if "name" in changes:
        taken = conn.execute(
            "SELECT 1 FROM folders WHERE organization_id = %s AND name = %s AND id <> %s",
            (organization_id, changes["name"], folder_id),
        ).fetchone()
        if taken is not None:
            return None
    return conn.execute(
        sql.SQL("UPDATE folders SET {} WHERE id = %s AND organization_id = %s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        ),
        (*values, folder_id, organization_id),
    ).fetchone()


def delete(conn: Conn, organization_id: str, folder_id: str) -> bool:
    cur = conn.execute("DELETE FROM folders WHERE id = %s AND organization_id = %s", (folder_id, organization_id))
    return cur.rowcount > 0


def list_page(conn: Conn, organization_id: str, page: Page, *, name: str | None = None) -> list[dict[str, Any]]:
    where = Where().equals("organization_id", organization_id).equals("name", name)
    return fetch_page(conn, table="folders", scope=where.clause(), scope_params=where.params, page=page)


def for_agent_page(conn: Conn, agent_id: str, page: Page) -> list[dict[str, Any]]:
    scope = sql.SQL("id IN (SELECT folder_id FROM agent_folders WHERE agent_id = %s)")
    return fetch_page(conn, table="folders", scope=scope, scope_params=(agent_id,), page=page)


def agents_page(conn: Conn, organization_id: str, folder_id: str, page: Page) -> list[dict[str, Any]]:
    """The agents (id rows) that have the folder attached, in the agents' creation order."""
    scope = sql.SQL("organization_id = %s AND id IN (SELECT agent_id FROM agent_folders WHERE folder_id = %s)")
    return fetch_page(
        conn,
        table="agents",
        scope=scope,
        scope_params=(organization_id, folder_id),
        page=page,
        columns=sql.SQL("id"),
    )


def attach(conn: Conn, agent_id: str, folder_id: str) -> bool:
    """Attach; False when it was attached already. The agent gets a view (closed) of every file."""
    cur = conn.execute(
        "INSERT INTO agent_folders (agent_id, folder_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (agent_id, folder_id),
    )
    conn.execute(
        """INSERT INTO agent_files (id, agent_id, file_id)
           SELECT 'file_agent-' || gen_random_uuid(), %s, f.id FROM folder_files f WHERE f.folder_id = %s
           ON CONFLICT (agent_id, file_id) DO NOTHING""",
        (agent_id, folder_id),
    )
    return cur.rowcount == 1


def detach(conn: Conn, agent_id: str, folder_id: str) -> bool:
    cur = conn.execute("DELETE FROM agent_folders WHERE agent_id = %s AND folder_id = %s", (agent_id, folder_id))
    conn.execute(
        "DELETE FROM agent_files WHERE agent_id = %s AND file_id IN (SELECT id FROM folder_files WHERE folder_id = %s)",
        (agent_id, folder_id),
    )
    return cur.rowcount > 0


def attached_ids(conn: Conn, agent_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT folder_id FROM agent_folders WHERE agent_id = %s ORDER BY created_at, folder_id", (agent_id,)
    ).fetchall()
    return [r["folder_id"] for r in rows]


def attached_agent_ids(conn: Conn, folder_id: str) -> list[str]:
    rows = conn.execute("SELECT agent_id FROM agent_folders WHERE folder_id = %s", (folder_id,)).fetchall()
    return [r["agent_id"] for r in rows]


def free_name(conn: Conn, organization_id: str, name: str) -> str:
    """``name``, or ``name (2)``, ``name (3)``... the first the organization has no folder called."""
    taken = {
        r["name"]
        for r in conn.execute(
            "SELECT name FROM folders WHERE organization_id = %s AND (name = %s OR starts_with(name, %s))",
            (organization_id, name, name + " ("),
        )
    }
    n, candidate = 1, name
    while candidate in taken:
        n += 1
        candidate = f"{name} ({n})"
    return candidate
