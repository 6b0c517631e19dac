"""SQL for searches across an organization's agents (``messages.search``, ``passages.search``): which
agents one search visits, and the newest rows of those agents when a search has no query. The ranked
search of each agent is :func:`o.store.search.hybrid_search`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from psycopg import sql

from o.store.db import Conn
from o.store.filters import Where
from o.store.search import SearchFilters

# Most agents one organization-wide search visits (the most recently active first).
MAX_AGENTS_SEARCHED = 200


def searched_agents(conn: Conn, organization_id: str, limit: int = MAX_AGENTS_SEARCHED) -> list[str]:
    """The organization's agents an organization-wide search visits, most recently updated first."""
    rows = conn.execute(
        "SELECT id FROM agents WHERE organization_id = %s ORDER BY updated_at DESC, id LIMIT %s",
        (organization_id, limit),
    ).fetchall()
    return [r["id"] for r in rows]


def recent_rows(
    conn: Conn,
    table: Literal["passages", "messages"],
    organization_id: str,
    agent_ids: Sequence[str],
    filters: SearchFilters,
    columns: Sequence[str],
    limit: int,
) -> list[dict[str, Any]]:
    """The newest rows of these agents that pass ``filters`` (a search without a query)."""
    where = (
        Where("p")
        .equals("organization_id", organization_id)
        .equals_any("agent_id", list(agent_ids))
        .tags("tags", filters.tags, match=filters.tag_match)
        .in_range("created_at", filters.created_from, filters.created_to)
        .equals_any("role", filters.roles)
    )
    query = sql.SQL("SELECT {cols} FROM {table} p WHERE {where} ORDER BY p.created_at DESC, p.id LIMIT %s").format(
        cols=sql.SQL(", ").join(sql.SQL("p.{}").format(sql.Identifier(c)) for c in columns),
        table=sql.Identifier(table),
        where=where.clause(),
    )
    return conn.execute(query, (*where.params, limit)).fetchall()
