"""SQL for identities (the people and organisations an organization's agents serve), the agents they
are attached to and the blocks they share."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

# each identity with the ids of its agents and blocks
_SHOWN = sql.SQL(
    """i.*,
       ARRAY(SELECT agent_id FROM identity_agents WHERE identity_id = i.id ORDER BY agent_id) AS agent_ids,
       ARRAY(SELECT block_id FROM identity_blocks WHERE identity_id = i.id ORDER BY block_id) AS block_ids"""
)
UPDATABLE = {"identifier_key", "name", "identity_type", "project_id", "properties"}


def get(conn: Conn, organization_id: str, identity_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = sql.SQL(" FOR UPDATE OF i") if for_update else sql.SQL("")
    return conn.execute(
        sql.SQL("SELECT {} FROM identities i WHERE i.id = %s AND i.organization_id = %s{}").format(_SHOWN, lock),
        (identity_id, organization_id),
    ).fetchone()


def by_key(conn: Conn, organization_id: str, identifier_key: str) -> dict[str, Any] | None:
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM identities i WHERE i.organization_id = %s AND i.identifier_key = %s FOR UPDATE OF i"
        ).format(_SHOWN),
        (organization_id, identifier_key),
    ).fetchone()


def insert(conn: Conn, row: dict[str, Any]) -> bool:
    """Insert; False when the organization has an identity with that identifier_key already."""
    cur = conn.execute(
        """INSERT INTO identities (id, organization_id, identifier_key, name, identity_type, project_id, properties)
           VALUES (%(id)s, %(organization_id)s, %(identifier_key)s, %(name)s, %(identity_type)s, %(project_id)s,
                   %(properties)s)
           ON CONFLICT (organization_id, identifier_key) DO NOTHING""",
        {**row, "properties": Jsonb(row.get("properties") or [])},
    )
    return cur.rowcount == 1


def update(conn: Conn, identity_id: str, changes: dict[str, Any]) -> bool:
    """Apply ``changes``; False when the new identifier_key is taken by another identity of the organization."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return True
    taken = conn.execute(
        """SELECT 1 FROM identities o JOIN identities i ON i.organization_id = o.organization_id
           WHERE i.id = %s AND o.id <> i.id AND o.identifier_key = %s""",
        (identity_id, changes.get("identifier_key")),
    ).fetchone()
    if taken is not None:
        return False
    assignments = [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes]
    values = [Jsonb(v) if c == "properties" else v for c, v in changes.items()]
    conn.execute(
        sql.SQL("UPDATE identities SET {}, updated_at = now() WHERE id = %s").format(sql.SQL(", ").join(assignments)),
        (*values, identity_id),
    )
    return True


def delete(conn: Conn, organization_id: str, identity_id: str) -> bool:
    cur = conn.execute("DELETE FROM identities WHERE id = %s AND organization_id = %s", (identity_id, organization_id))
    return cur.rowcount == 1


def list_page(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    name: str | None = None,
    identifier_key: str | None = None,
    identity_type: str | None = None,
    project_id: str | None = None,
) -> list[dict[str, Any]]:
    where = (
        Where()
        .equals("organization_id", organization_id)
        .contains("name", name)
        .equals("identifier_key", identifier_key)
        .equals("identity_type", identity_type)
        .equals("project_id", project_id)
    )
    ids = [
        r["id"]
        for r in fetch_page(
            conn, table="identities", scope=where.clause(), scope_params=where.params, page=page, columns=sql.SQL("id")
        )
    ]
    return shown(conn, ids)


def shown(conn: Conn, identity_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Identities by id, in the order given."""
    if not identity_ids:
        return []
    rows = conn.execute(
        sql.SQL("SELECT {} FROM identities i WHERE i.id = ANY(%s)").format(_SHOWN), (list(identity_ids),)
    ).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in identity_ids if i in by_id]


def for_agent(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The identities attached to an agent (for the agent's ``identity_ids`` / ``identities``)."""
    ids = [
        r["identity_id"]
        for r in conn.execute(
            "SELECT identity_id FROM identity_agents WHERE agent_id = %s ORDER BY identity_id", (agent_id,)
        ).fetchall()
    ]
    return shown(conn, ids)


def attach_agent(conn: Conn, identity_id: str, agent_id: str) -> bool:
    cur = conn.execute(
        "INSERT INTO identity_agents (identity_id, agent_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (identity_id, agent_id),
    )
    return cur.rowcount == 1


def detach_agent(conn: Conn, identity_id: str, agent_id: str) -> bool:
    cur = conn.execute("DELETE FROM identity_agents WHERE identity_id = %s AND agent_id = %s", (identity_id, agent_id))
    return cur.rowcount == 1


def set_blocks(conn: Conn, identity_id: str, block_ids: Sequence[str]) -> None:
    conn.execute("DELETE FROM identity_blocks WHERE identity_id = %s", (identity_id,))
    conn.execute(
        "INSERT INTO identity_blocks (identity_id, block_id) SELECT %s, unnest(%s::text[]) ON CONFLICT DO NOTHING",
        (identity_id, list(block_ids)),
    )


def missing(conn: Conn, table: str, organization_id: str, ids: Sequence[str]) -> list[str]:
    """The ``ids`` that name no row of ``table`` (agents or blocks) in the organization."""
    if table not in ("agents", "blocks"):
        raise ValueError(table)
    found = conn.execute(
        sql.SQL("SELECT id FROM {} WHERE organization_id = %s AND id = ANY(%s)").format(sql.Identifier(table)),
        (organization_id, list(ids)),
    ).fetchall()
    return sorted(set(ids) - {r["id"] for r in found})
