"""SQL for custom tools, their versions, agent attachments and per-agent tool variables.

Every read and write is scoped by organization: a tool id of another organization finds
nothing, which the API reports as 404.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from o.store import rows
from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

# Columns a caller may set through update(); id, organization, version and times are managed here.
UPDATABLE = {
    "name",
    "description",
    "tool_type",
    "source_type",
    "source_code",
    "json_schema",
    "args_json_schema",
    "tags",
    "return_char_limit",
    "metadata",
    "pip_requirements",
    "npm_requirements",
    "default_requires_approval",
    "enable_parallel_execution",
}
_JSON = {"json_schema", "args_json_schema", "metadata", "pip_requirements", "npm_requirements"}
# a change to any of these is a new version of the tool
VERSIONED = {"name", "description", "source_code", "json_schema", "return_char_limit"}
# Letta's own tools (the base tools every organization has a record of) have a tool_type "letta_..."
LETTA_TYPES = "letta\\_%"


def insert(conn: Conn, tool: dict[str, Any]) -> dict[str, Any]:
    row = rows.insert_one(conn, "tools", tool, json_columns=_JSON)
    _record_version(conn, row)
    return row


def get(conn: Conn, organization_id: str, tool_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    return rows.get_by_id(conn, "tools", tool_id, organization_id=organization_id, for_update=for_update)


def get_by_name(conn: Conn, organization_id: str, name: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return conn.execute(
        "SELECT * FROM tools WHERE name = %s AND organization_id = %s" + lock, (name, organization_id)
    ).fetchone()


def list_page(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    name: str | None = None,
    names: list[str] | None = None,
    tool_types: list[str] | None = None,
    search: str | None = None,
    tool_ids: list[str] | None = None,
    exclude_tool_types: list[str] | None = None,
    only_letta: bool = False,
) -> list[dict[str, Any]]:
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals("name", name)
        .equals_any("name", names)
        .equals_any("id", tool_ids)
        .equals_any("tool_type", tool_types)
        .contains("name", search)
    )
    if exclude_tool_types:
        where.conditions.append(sql.SQL("NOT (tool_type = ANY(%s))"))
        where.values.append(list(exclude_tool_types))
    if only_letta:
        where.conditions.append(sql.SQL("tool_type LIKE %s"))
        where.values.append(LETTA_TYPES)
    return fetch_page(conn, table="tools", scope=where.clause(), scope_params=where.params, page=page)


def letta_tools(conn: Conn, organization_id: str) -> list[dict[str, Any]]:
    """The organization's records of Letta's own tools (its base tools)."""
    return conn.execute(
        "SELECT * FROM tools WHERE organization_id = %s AND tool_type LIKE %s ORDER BY name",
        (organization_id, LETTA_TYPES),
    ).fetchall()


def insert_unless_present(conn: Conn, tool: dict[str, Any]) -> dict[str, Any] | None:
    """Insert the tool unless the organization has one of that name (a concurrent insert included)."""
    row = rows.insert(conn, "tools", tool, json_columns=_JSON, on_conflict="(organization_id, name) DO NOTHING")
    if row is not None:
        _record_version(conn, row)
    return row


def count(conn: Conn, organization_id: str) -> int:
    row = conn.execute("SELECT count(*) AS n FROM tools WHERE organization_id = %s", (organization_id,)).fetchone()
    return int(row["n"]) if row else 0


def update(conn: Conn, organization_id: str, tool_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Apply ``changes``; a change to the source, schema or name records a new version."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    current = get(conn, organization_id, tool_id, for_update=True)
    if current is None:
        return None
    real = {c: v for c, v in changes.items() if current.get(c) != v}
    if not real:
        return current
    bump = bool(VERSIONED & set(real))
    assignments, values = rows.assignments(real, json_columns=_JSON)
    assignments.append(sql.SQL("updated_at = now()"))
    if bump:
        assignments.append(sql.SQL("version = version + 1"))
    row = conn.execute(
        sql.SQL("UPDATE tools SET {} WHERE id = %s AND organization_id = %s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        ),
        (*values, tool_id, organization_id),
    ).fetchone()
    if row is not None and bump:
        _record_version(conn, row)
    return row


def delete(conn: Conn, organization_id: str, tool_id: str) -> bool:
    cur = conn.execute("DELETE FROM tools WHERE id = %s AND organization_id = %s", (tool_id, organization_id))
    return cur.rowcount == 1


def _record_version(conn: Conn, tool: dict[str, Any]) -> None:
    conn.execute(
        """INSERT INTO tool_versions
               (tool_id, version, organization_id, name, description, source_code, json_schema, return_char_limit)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (tool_id, version) DO NOTHING""",
        (
            tool["id"],
            tool["version"],
            tool["organization_id"],
            tool["name"],
            tool["description"],
            tool["source_code"],
            Jsonb(tool["json_schema"]),
            tool["return_char_limit"],
        ),
    )


def versions(
    conn: Conn,
    organization_id: str,
    tool_id: str,
    *,
    limit: int,
    after: int | None = None,
    before: int | None = None,
    descending: bool = False,
) -> list[dict[str, Any]]:
    """A page of the tool's versions; ``after``/``before`` are version numbers, relative to the order."""
    later, earlier = (before, after) if descending else (after, before)
    where = (
        Where()
        .equals("tool_id", tool_id)
        .equals("organization_id", organization_id)
        .strictly_between("version", later, earlier)
    )
    order = sql.SQL("DESC" if descending else "ASC")
    return conn.execute(
        sql.SQL("SELECT * FROM tool_versions WHERE {} ORDER BY version {} LIMIT %s").format(where.clause(), order),
        (*where.params, limit),
    ).fetchall()


def attach(conn: Conn, agent_id: str, tool_id: str) -> bool:
    """Attach; False if it already was."""
    cur = conn.execute(
        "INSERT INTO agent_tools (agent_id, tool_id) VALUES (%s, %s) ON CONFLICT DO NOTHING", (agent_id, tool_id)
    )
    return cur.rowcount == 1


def detach(conn: Conn, agent_id: str, tool_id: str) -> bool:
    cur = conn.execute("DELETE FROM agent_tools WHERE agent_id = %s AND tool_id = %s", (agent_id, tool_id))
    return cur.rowcount == 1


def attached_ids(conn: Conn, agent_id: str) -> list[str]:
    """The ids of the agent's own tools attached to it, sorted: what a revision records. Letta's base
    tools are left out: revisions taken before they were records never named them, and an agent keeps
    the base tools it has whichever revision it runs."""
    rows = conn.execute(
        """SELECT at.tool_id FROM agent_tools at JOIN tools t ON t.id = at.tool_id
           WHERE at.agent_id = %s AND t.tool_type NOT LIKE %s ORDER BY at.tool_id""",
        (agent_id, LETTA_TYPES),
    )
    return [r["tool_id"] for r in rows]


def set_attached(conn: Conn, agent_id: str, tool_ids: list[str]) -> None:
    """Make the agent's own attached tools exactly ``tool_ids`` (its base tools stay as they are)."""
    conn.execute(
        """DELETE FROM agent_tools at USING tools t
           WHERE at.agent_id = %s AND t.id = at.tool_id AND t.tool_type NOT LIKE %s
             AND NOT (at.tool_id = ANY(%s))""",
        (agent_id, LETTA_TYPES, tool_ids),
    )
    for tool_id in tool_ids:
        attach(conn, agent_id, tool_id)


def attached_letta_ids(conn: Conn, agent_id: str) -> list[str]:
    """The ids of Letta's base tools attached to the agent."""
    rows = conn.execute(
        """SELECT at.tool_id FROM agent_tools at JOIN tools t ON t.id = at.tool_id
           WHERE at.agent_id = %s AND t.tool_type LIKE %s ORDER BY at.tool_id""",
        (agent_id, LETTA_TYPES),
    )
    return [r["tool_id"] for r in rows]


def known_ids(conn: Conn, organization_id: str, tool_ids: list[str]) -> set[str]:
    """Those of ``tool_ids`` that name a tool of the organization."""
    rows = conn.execute("SELECT id FROM tools WHERE organization_id = %s AND id = ANY(%s)", (organization_id, tool_ids))
    return {r["id"] for r in rows}


def for_agent(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        """SELECT t.* FROM agent_tools at JOIN tools t ON t.id = at.tool_id
           WHERE at.agent_id = %s ORDER BY t.name""",
        (agent_id,),
    ).fetchall()


def attached_by_name(conn: Conn, organization_id: str, agent_id: str, name: str) -> dict[str, Any] | None:
    return conn.execute(
        """SELECT t.* FROM agent_tools at JOIN tools t ON t.id = at.tool_id
           WHERE at.agent_id = %s AND t.name = %s AND t.organization_id = %s""",
        (agent_id, name, organization_id),
    ).fetchone()


def agents_using(conn: Conn, tool_id: str) -> list[str]:
    return [r["agent_id"] for r in conn.execute("SELECT agent_id FROM agent_tools WHERE tool_id = %s", (tool_id,))]


def env_for_agent(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The agent's tool variables as the API lists them: names and descriptions, never a value."""
    return conn.execute(
        "SELECT key, description, updated_at FROM agent_tool_env WHERE agent_id = %s ORDER BY key",
        (agent_id,),
    ).fetchall()


def env_for_run(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The agent's tool variables as stored: ``sealed``, or ``value`` for a row an earlier release
    wrote in plaintext and no start has sealed yet."""
    return conn.execute(
        "SELECT key, value, sealed FROM agent_tool_env WHERE agent_id = %s ORDER BY key", (agent_id,)
    ).fetchall()


def env_keys(conn: Conn, agent_id: str) -> set[str]:
    return {r["key"] for r in conn.execute("SELECT key FROM agent_tool_env WHERE agent_id = %s", (agent_id,))}


def replace_env(
    conn: Conn, agent_id: str, sealed: dict[str, bytes], descriptions: dict[str, str], *, keep: Collection[str] = ()
) -> None:
    """Make the agent's tool variables exactly ``sealed`` plus ``keep`` (kept as stored, with a new
    description)."""
    names = [*sealed, *keep]
    conn.execute("DELETE FROM agent_tool_env WHERE agent_id = %s AND NOT (key = ANY(%s))", (agent_id, names))
    for key, value in sealed.items():
        conn.execute(
            """INSERT INTO agent_tool_env (agent_id, key, sealed, description) VALUES (%s, %s, %s, %s)
               ON CONFLICT (agent_id, key) DO UPDATE
               SET value = NULL, sealed = EXCLUDED.sealed, description = EXCLUDED.description, updated_at = now()""",
            (agent_id, key, value, descriptions.get(key)),
        )
    for key in keep:
        conn.execute(
            "UPDATE agent_tool_env SET description = %s, updated_at = now() WHERE agent_id = %s AND key = %s",
            (descriptions.get(key), agent_id, key),
        )


def plaintext_env(conn: Conn, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` tool variables still in plaintext, locked; rows another sealer holds are skipped."""
    return conn.execute(
        """SELECT agent_id, key, value FROM agent_tool_env WHERE value IS NOT NULL
           ORDER BY agent_id, key LIMIT %s FOR UPDATE SKIP LOCKED""",
        (limit,),
    ).fetchall()


def seal_env(conn: Conn, agent_id: str, key: str, sealed: bytes) -> None:
    """Replace a plaintext tool variable by its sealed form (its time of change stays what it was)."""
    conn.execute(
        "UPDATE agent_tool_env SET value = NULL, sealed = %s WHERE agent_id = %s AND key = %s",
        (sealed, agent_id, key),
    )


def insert_unless_named(conn: Conn, tool: dict[str, Any]) -> dict[str, Any] | None:
    """Insert the tool, or None when the organization has a tool of that name already (a concurrent
    insert included): the savepoint keeps the caller's transaction usable either way."""
    try:
        with conn.transaction():
            return insert(conn, tool)
    except psycopg.errors.UniqueViolation:
        return None


def _search_scope(organization_id: str, tool_types: list[str] | None, tags: list[str] | None) -> Where:
    return (
        Where(alias="t")
        .equals("organization_id", organization_id)
        .equals_any("tool_type", tool_types)
        .tags("tags", tags)
    )


# what full-text search reads of a tool: its name (words split at underscores), description and tags
_DOCUMENT = sql.SQL(
    "to_tsvector('english', replace(t.name, '_', ' ') || ' ' || coalesce(t.description, '') || ' ' "
    "|| array_to_string(t.tags, ' '))"
)


def search_text(
    conn: Conn, organization_id: str, query: str, *, tool_types: list[str] | None, tags: list[str] | None, limit: int
) -> list[dict[str, Any]]:
    """The organization's tools that share a word (stemmed) with ``query``, best match first, each
    with its ``fts_score``: any of the query's words matches, more and rarer ones rank higher."""
    where = _search_scope(organization_id, tool_types, tags)
    return conn.execute(
        sql.SQL(
            """SELECT t.*, ts_rank_cd({doc}, q.any_word) AS fts_score
               FROM tools t,
                    LATERAL (SELECT nullif(replace(plainto_tsquery('english', %s)::text, ' & ', ' | '), '')
                                    ::tsquery AS any_word) q
               WHERE {scope} AND q.any_word IS NOT NULL AND {doc} @@ q.any_word
               ORDER BY fts_score DESC, t.id LIMIT %s"""
        ).format(doc=_DOCUMENT, scope=where.clause()),
        (query, *where.params, limit),
    ).fetchall()


def search_candidates(
    conn: Conn, organization_id: str, *, tool_types: list[str] | None, tags: list[str] | None, limit: int
) -> list[dict[str, Any]]:
    """The organization's tools a search may rank by meaning, oldest first, at most ``limit``."""
    where = _search_scope(organization_id, tool_types, tags)
    return conn.execute(
        sql.SQL("SELECT t.* FROM tools t WHERE {} ORDER BY t.created_at, t.id LIMIT %s").format(where.clause()),
        (*where.params, limit),
    ).fetchall()
