"""SQL for agent revisions: immutable, numbered per agent (a trigger refuses updates)."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from o.store.db import Conn


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    """Insert the next revision of ``row['agent_id']``; the number is assigned here under the agent's lock.

    The caller holds the agent row lock (``SELECT ... FOR UPDATE``) so two writers never pick the same number.
    """
    created = conn.execute(
        """INSERT INTO agent_revisions
               (id, organization_id, agent_id, number, parent, config, config_hash, diff, block_ids, author,
                rationale, evolution_id)
           VALUES (%(id)s, %(organization_id)s, %(agent_id)s,
                   (SELECT coalesce(max(number), 0) + 1 FROM agent_revisions WHERE agent_id = %(agent_id)s),
                   %(parent)s, %(config)s, %(config_hash)s, %(diff)s, %(block_ids)s, %(author)s, %(rationale)s,
                   %(evolution_id)s)
           RETURNING *""",
        {
            **row,
            "config": Jsonb(row["config"]),
            "diff": Jsonb(row.get("diff") or {}),
            "block_ids": Jsonb(row.get("block_ids") or {}),
            "rationale": row.get("rationale") or "",
            "evolution_id": row.get("evolution_id"),
        },
    ).fetchone()
    assert created is not None
    return created


def get(conn: Conn, agent_id: str, number: int) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM agent_revisions WHERE agent_id = %s AND number = %s", (agent_id, number)
    ).fetchone()


def list_for_agent(
    conn: Conn,
    agent_id: str,
    *,
    limit: int = 50,
    before: int | None = None,
    after: int | None = None,
    order: str = "desc",
) -> list[dict[str, Any]]:
    """Revisions by number, with cursors relative to ``order`` as every Letta list has them (with
    ``desc``, ``after`` is lower numbers); with only ``before``, the revisions nearest it."""
    descending = order == "desc"
    later, earlier = ("<", ">") if descending else (">", "<")
    backwards = before is not None and after is None
    scan = "DESC" if descending != backwards else "ASC"
    rows = conn.execute(
        f"""SELECT * FROM agent_revisions
            WHERE agent_id = %(a)s AND (%(before)s::int IS NULL OR number {earlier} %(before)s)
              AND (%(after)s::int IS NULL OR number {later} %(after)s)
            ORDER BY number {scan} LIMIT %(limit)s""",
        {"a": agent_id, "before": before, "after": after, "limit": limit},
    ).fetchall()
    if backwards:
        rows.reverse()
    return rows


def set_agent_revision(conn: Conn, agent_id: str, number: int) -> None:
    # metadata.revision makes the running revision visible in Letta's AgentState without a schema change there
    conn.execute(
        """UPDATE agents SET revision = %s,
                  metadata = metadata || jsonb_build_object('revision', %s::int),
                  version = version + 1, updated_at = now()
           WHERE id = %s""",
        (number, number, agent_id),
    )
