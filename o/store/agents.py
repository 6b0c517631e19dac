"""SQL for agents. Rows come back as dicts; the API shapes them into Letta's AgentState."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.errors import NotFound
from o.store import keyed, rows
from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page

# Columns a caller may set through update(); everything else is managed here.
UPDATABLE = {
    "name",
    "description",
    "agent_type",
    "system",
    "llm_config",
    "embedding_config",
    "tool_rules",
    "tags",
    "metadata",
    "timezone",
    "enable_sleeptime",
    "message_buffer_autoclear",
    "max_files_open",
    "per_file_view_window_char_limit",
}
_JSON = {"llm_config", "embedding_config", "tool_rules", "metadata"}


def _shown_version(agent: str) -> str:
    # the rows' versions (xmin: the transaction that wrote each row's current version) and ids, in the
    # order the agent shows them; a missing part is '' so the parts cannot run into each other
    return f"""{agent}.xmin::text
    || '/' || coalesce((SELECT string_agg(ab.xmin::text || '.' || b.xmin::text || '.' || b.id, ','
                                          ORDER BY ab.position, b.created_at)
                          FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id WHERE ab.agent_id = {agent}.id), '')
    || '/' || coalesce((SELECT string_agg(at.xmin::text || '.' || t.xmin::text || '.' || t.id, ',' ORDER BY t.name)
                          FROM agent_tools at JOIN tools t ON t.id = at.tool_id WHERE at.agent_id = {agent}.id), '')
    || '/' || coalesce((SELECT string_agg(e.xmin::text || '.' || e.key, ',' ORDER BY e.key)
                          FROM agent_tool_env e WHERE e.agent_id = {agent}.id), '')
    || '/' || coalesce((SELECT string_agg(ia.xmin::text || '.' || ia.identity_id, ',' ORDER BY ia.identity_id)
                          FROM identity_agents ia WHERE ia.agent_id = {agent}.id), '')"""


# What names the version of an agent as the API shows it (o/api/serialized.py): the versions of its row and
# of every row its AgentState is made of (its blocks and their attachments, its tools and theirs, its tool
# variables, its identities). Any change to one of them, or to which of them it has, changes it.
SHOWN_VERSION = "shown_version"
_SHOWN_VERSIONS = "SELECT a.id, " + _shown_version("a") + " AS v FROM agents a WHERE "
_ID_AND_VERSION = sql.SQL("id, " + _shown_version("agents") + " AS " + SHOWN_VERSION)


def insert(conn: Conn, agent: dict[str, Any]) -> dict[str, Any]:
    return rows.insert_one(conn, "agents", agent, json_columns=_JSON)


def get(conn: Conn, organization_id: str, agent_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    return rows.get_by_id(conn, "agents", agent_id, organization_id=organization_id, for_update=for_update)


def list_page_versions(
    conn: Conn,
    organization_id: str,
    page: Page,
    *,
    name: str | None = None,
    tags: list[str] | None = None,
    match_all_tags: bool = False,
    query_text: str | None = None,
    identity_id: str | None = None,
    identifier_keys: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The ``id`` and :data:`SHOWN_VERSION` of each agent of a page of the organization's agents
    (filtered), in the page's order."""
    where = (
        Where()
        .equals("organization_id", organization_id)
        .equals("name", name)
        .tags("tags", tags, match="all" if match_all_tags else "any")
        .contains("name", query_text)
        .identified("agents", identity_id, identifier_keys)
    )
    # the ids and versions only: the agents not yet written are read with what they show by with_related,
    # and decoding every JSON column of 50 rows here as well cost a list a tenth of its CPU
    return fetch_page(
        conn,
        table="agents",
        columns=_ID_AND_VERSION,
        scope=where.clause(),
        scope_params=where.params,
        page=page,
        # the organization's condition alone (no filter): one text
        shape="versions, unfiltered" if len(where.conditions) == 1 else None,
    )


def update(conn: Conn, organization_id: str, agent_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    assignments, values = rows.assignments(changes, json_columns=_JSON)
    assignments.append(sql.SQL("updated_at = now(), version = version + 1"))
    return conn.execute(
        sql.SQL("UPDATE agents SET {} WHERE id = %s AND organization_id = %s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        ),
        (*values, agent_id, organization_id),
    ).fetchone()


def autoclears(conn: Conn, agent_id: str) -> bool:
    """Whether the agent clears its conversation's context after each run (Letta's message_buffer_autoclear)."""
    row = conn.execute("SELECT message_buffer_autoclear FROM agents WHERE id = %s", (agent_id,)).fetchone()
    return bool(row and row["message_buffer_autoclear"])


def touch(conn: Conn, agent_id: str) -> None:
    """Mark the agent's compiled prompt stale (a block or tool it uses changed)."""
    conn.execute("UPDATE agents SET version = version + 1, updated_at = now() WHERE id = %s", (agent_id,))


def delete(conn: Conn, organization_id: str, agent_id: str) -> bool:
    cur = conn.execute("DELETE FROM agents WHERE id = %s AND organization_id = %s", (agent_id, organization_id))
    return cur.rowcount == 1


_TOOL = """json_build_object(
                  'id', t.id, 'name', t.name, 'description', t.description, 'tool_type', t.tool_type,
                  'source_type', t.source_type, 'json_schema', t.json_schema, 'tags', t.tags,
                  'return_char_limit', t.return_char_limit)"""
_BLOCKS = """
    coalesce((SELECT json_agg(b.* ORDER BY ab.position, b.created_at)
                FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id
               WHERE ab.agent_id = a.id), '[]') AS related_blocks,"""
_TOOLS = f"""
    coalesce((SELECT json_agg({_TOOL} ORDER BY t.name)
                FROM agent_tools at JOIN tools t ON t.id = at.tool_id
               WHERE at.agent_id = a.id), '[]') AS related_tools,"""
# a list's agents name their tools by id; each distinct tool is read (and its schema parsed) once
_TOOL_IDS = """
    coalesce((SELECT json_agg(t.id ORDER BY t.name)
                FROM agent_tools at JOIN tools t ON t.id = at.tool_id
               WHERE at.agent_id = a.id), '[]') AS related_tools,"""
_REST = """
    coalesce((SELECT json_agg(json_build_object('key', e.key, 'description', e.description)
                              ORDER BY e.key)
                FROM agent_tool_env e WHERE e.agent_id = a.id), '[]') AS related_env,
    coalesce((SELECT json_agg(ia.identity_id ORDER BY ia.identity_id)
                FROM identity_agents ia WHERE ia.agent_id = a.id), '[]') AS related_identity_ids
"""


def shown_versions(conn: Conn, organization_id: str, agent_ids: list[str]) -> dict[str, str]:
    """The :data:`SHOWN_VERSION` of these agents of the organization, by id."""
    where, params = keyed.with_key("a.organization_id = %s AND a.id = ANY(%s)", (organization_id, agent_ids))
    rows = conn.execute(_SHOWN_VERSIONS + where, params).fetchall()
    keyed.settle(conn, bool(rows))
    return {row["id"]: row["v"] for row in rows}


def with_related(
    conn: Conn, organization_id: str, agent_ids: list[str], *, versions: bool = False
) -> dict[str, dict[str, Any]]:
    """Agents with their blocks, tools and tool variables, in one round trip (what the API shows); with
    ``versions``, each with its :data:`SHOWN_VERSION` as read in the same statement.

    The related rows arrive as JSON: timestamps are ISO strings there.
    """
    shared = len(agent_ids) > 1
    related = _BLOCKS + (_TOOL_IDS if shared else _TOOLS) + _REST
    if versions:
        related += ", " + _shown_version("a") + " AS " + SHOWN_VERSION
    rows = conn.execute(
        "SELECT a.*, " + related + " FROM agents a WHERE a.organization_id = %s AND a.id = ANY(%s)",
        (organization_id, agent_ids),
    ).fetchall()
    if shared:
        wanted = list({tool_id for row in rows for tool_id in row["related_tools"]})
        tools = {
            t["tool"]["id"]: t["tool"]
            for t in conn.execute(f"SELECT {_TOOL} AS tool FROM tools t WHERE t.id = ANY(%s)", (wanted,))
        }
        for row in rows:
            row["related_tools"] = [dict(tools[tool_id]) for tool_id in row["related_tools"] if tool_id in tools]
    return {row["id"]: row for row in rows}


def revision_state(conn: Conn, agent_id: str) -> dict[str, Any]:
    """The agent's revision pointer, prompt version and metadata as they are now (empty if it is gone)."""
    row = conn.execute("SELECT revision, version, metadata FROM agents WHERE id = %s", (agent_id,)).fetchone()
    return dict(row) if row else {}


def memory_summary(conn: Conn, agent_id: str) -> dict[str, Any]:
    """What the system prompt shows of the agent's memory, in one round trip: ``blocks`` (label,
    description, value, char_limit, read_only; in attachment order), the ``recall`` and ``archival``
    sizes, and ``last_edit``, the newest block change."""
    row = conn.execute(
        """SELECT (SELECT count(*) FROM messages WHERE agent_id = %(a)s) AS recall,
                  (SELECT count(*) FROM passages WHERE agent_id = %(a)s) AS archival,
                  (SELECT max(b.updated_at) FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id
                    WHERE ab.agent_id = %(a)s) AS last_edit,
                  (SELECT coalesce(jsonb_agg(jsonb_build_object(
                              'label', ab.label, 'description', b.description, 'value', b.value,
                              'char_limit', b.char_limit, 'read_only', b.read_only)
                          ORDER BY ab.position, b.created_at), '[]'::jsonb)
                     FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id
                    WHERE ab.agent_id = %(a)s) AS blocks""",
        {"a": agent_id},
    ).fetchone()
    assert row is not None
    return row


def require(conn: Conn, organization_id: str, agent_id: str, *, for_update: bool = False) -> dict[str, Any]:
    """The agent row, or NotFound: also how another organization's ids stay invisible."""
    agent = get(conn, organization_id, agent_id, for_update=for_update)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    return agent
