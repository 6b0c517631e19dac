"""SQL for memory blocks and their attachment to agents.

Edits go through :func:`lock` + :func:`write` inside one transaction, so two concurrent
edits of one block serialize on its row lock and neither is lost.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.store import keyed, rows
from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

_JSON = {"metadata"}
UPDATABLE = {"label", "value", "char_limit", "description", "read_only", "is_template", "template_name", "metadata"}


def insert(conn: Conn, block: dict[str, Any]) -> dict[str, Any]:
    return rows.insert_one(conn, "blocks", block, json_columns=_JSON)


def get(conn: Conn, organization_id: str, block_id: str) -> dict[str, Any] | None:
    return rows.get_by_id(conn, "blocks", block_id, organization_id=organization_id)


def lock(conn: Conn, organization_id: str, block_id: str) -> dict[str, Any] | None:
    """Read a block and hold its row lock until the transaction ends."""
    return rows.get_by_id(conn, "blocks", block_id, organization_id=organization_id, for_update=True)


def lock_by_label(conn: Conn, organization_id: str, agent_id: str, label: str) -> dict[str, Any] | None:
    return conn.execute(
        """SELECT b.* FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id
           WHERE ab.agent_id = %s AND ab.label = %s AND b.organization_id = %s
           FOR UPDATE OF b""",
        (agent_id, label, organization_id),
    ).fetchone()


def write(conn: Conn, block_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    """Apply changes to a block the caller has locked; keep attachment labels in step."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments, values = rows.assignments(changes, json_columns=_JSON)
    assignments.append(sql.SQL("version = version + 1, updated_at = now()"))
    if "label" in changes:
        conn.execute("UPDATE agent_blocks SET label = %s WHERE block_id = %s", (changes["label"], block_id))
    # One statement, one round trip: the block, and every agent that shows it (its prompt must be
    # recompiled). The block's row is already locked, so the lock order (block, then agents) is unchanged.
    row = conn.execute(
        sql.SQL(
            """WITH touched AS (
                   UPDATE agents SET version = version + 1, updated_at = now()
                    WHERE id IN (SELECT agent_id FROM agent_blocks WHERE block_id = %s))
               UPDATE blocks SET {} WHERE id = %s RETURNING *"""
        ).format(sql.SQL(", ").join(assignments)),
        (block_id, *values, block_id),
    ).fetchone()
    assert row is not None
    return row


# What :func:`set_by_label` changes in its one statement; a new label or limit takes the locking way.
SET_IN_ONE = UPDATABLE - {"label", "char_limit"}


def settable_in_one(changes: dict[str, Any]) -> bool:
    """Whether :func:`set_by_label` can make these changes (a value to check, no null metadata)."""
    return (
        bool(changes)
        and set(changes) <= SET_IN_ONE
        and isinstance(changes.get("value", ""), str)
        and changes.get("metadata", {}) is not None
    )


# set_by_label's statements, by the columns they set and their target's condition (a value and no key check,
# a value and the key's check, ...: subsets of SET_IN_ONE, in the order of the API's fields), composed once
# rather than on every PATCH, like a page's statements (o/store/pages.py)
_SET_BY_LABEL: dict[tuple[tuple[str, ...], str], bytes] = {}


def set_by_label(
    conn: Conn, organization_id: str, agent_id: str, label: str, changes: dict[str, Any]
) -> dict[str, Any] | None:
    """Change the agent's block ``label`` in ONE statement (in autocommit, its own transaction): the
    block found through an agent of this organization, the value checked against the block's limit in
    the UPDATE itself, and every agent that shows the block marked for recompilation. ``None`` when
    nothing changed: no such block, or a value over the limit (the caller's locking path says which)."""
    # on the hot path, the request's key is checked by this statement (o.store.keyed)
    target, target_params = keyed.with_key(
        "ab.agent_id = %s AND ab.label = %s AND b.organization_id = %s", (agent_id, label, organization_id)
    )
    columns = tuple(changes)
    query = _SET_BY_LABEL.get((columns, target))
    if query is None:
        assignments, _ = rows.assignments(changes)
        query = _SET_BY_LABEL[(columns, target)] = (
            sql.SQL(
                """WITH target AS (
                       SELECT b.id FROM blocks b JOIN agent_blocks ab ON ab.block_id = b.id WHERE {}
                   ), changed AS (
                       UPDATE blocks b SET {}, version = b.version + 1, updated_at = now()
                         FROM target
                        WHERE b.id = target.id AND char_length(coalesce(%s::text, b.value)) <= b.char_limit
                       RETURNING b.*
                   ), touched AS (
                       UPDATE agents SET version = version + 1, updated_at = now()
                        WHERE id IN (SELECT ab.agent_id FROM agent_blocks ab JOIN changed c ON ab.block_id = c.id)
                   )
                   SELECT * FROM changed"""
            )
            .format(sql.SQL(target), sql.SQL(", ").join(assignments))
            .as_bytes(conn)
        )
    values = [rows.value(c, v, _JSON) for c, v in changes.items()]
    changed = conn.execute(query, (*target_params, *values, changes.get("value"))).fetchone()
    keyed.settle(conn, changed is not None)
    return changed


def list_page(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    label: str | None = None,
    templates_only: bool = False,
    identity_id: str | None = None,
    identifier_keys: list[str] | None = None,
) -> list[dict[str, Any]]:
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals("label", label)
        .is_true("is_template", templates_only)
        .identified("blocks", identity_id, identifier_keys)
    )
    return fetch_page(conn, table="blocks", scope=where.clause(), scope_params=where.params, page=page)


def delete(conn: Conn, organization_id: str, block_id: str) -> bool:
    conn.execute(
        """UPDATE agents SET version = version + 1, updated_at = now()
           WHERE id IN (SELECT agent_id FROM agent_blocks WHERE block_id = %s)""",
        (block_id,),
    )
    cur = conn.execute("DELETE FROM blocks WHERE id = %s AND organization_id = %s", (block_id, organization_id))
    return cur.rowcount == 1


def for_agents(conn: Conn, agent_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Blocks of each agent, in attachment order."""
    out: dict[str, list[dict[str, Any]]] = {a: [] for a in agent_ids}
    for row in conn.execute(
        """SELECT ab.agent_id, b.* FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id
           WHERE ab.agent_id = ANY(%s) ORDER BY ab.agent_id, ab.position, b.created_at""",
        (agent_ids,),
    ):
        agent_id = row.pop("agent_id")
        out[agent_id].append(row)
    return out


def attach(conn: Conn, agent_id: str, block: dict[str, Any]) -> bool:
    """Attach; False if a block with the same label is already attached (the caller decides)."""
    cur = conn.execute(
        """INSERT INTO agent_blocks (agent_id, block_id, label, position)
           VALUES (%s, %s, %s, (SELECT coalesce(max(position) + 1, 0) FROM agent_blocks WHERE agent_id = %s))
           ON CONFLICT DO NOTHING""",
        (agent_id, block["id"], block["label"], agent_id),
    )
    return cur.rowcount == 1


def attached_label_owner(conn: Conn, agent_id: str, label: str) -> str | None:
    row = conn.execute(
        "SELECT block_id FROM agent_blocks WHERE agent_id = %s AND label = %s", (agent_id, label)
    ).fetchone()
    return row["block_id"] if row else None


def detach(conn: Conn, agent_id: str, block_id: str) -> bool:
    cur = conn.execute("DELETE FROM agent_blocks WHERE agent_id = %s AND block_id = %s", (agent_id, block_id))
    return cur.rowcount == 1


def agents_using(conn: Conn, block_id: str) -> list[str]:
    return [
        r["agent_id"]
        for r in conn.execute("SELECT agent_id FROM agent_blocks WHERE block_id = %s ORDER BY agent_id", (block_id,))
    ]


def last_detached(conn: Conn, organization_id: str, agent_id: str, label: str) -> dict[str, Any] | None:
    """The newest block labelled ``label`` that a revision detached from the agent (its value kept for a rollback)."""
    return conn.execute(
        """SELECT * FROM blocks WHERE organization_id = %s AND label = %s
           AND metadata->>'detached_from' = %s ORDER BY updated_at DESC LIMIT 1""",
        (organization_id, label, agent_id),
    ).fetchone()
