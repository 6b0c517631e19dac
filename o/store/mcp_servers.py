"""MCP servers of an organization (``mcp_servers``) and the tool rows they contribute (``tools`` with
tool_type ``external_mcp``). The secrets a server is reached with arrive here sealed."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.store import rows
from o.store.db import Conn

MCP_TOOL_TYPE = "external_mcp"
_JSON = {"args", "header_names", "env_names"}
UPDATABLE = {
    "server_name",
    "server_type",
    "server_url",
    "command",
    "args",
    "auth_header",
    "sealed",
    "has_auth_token",
    "header_names",
    "env_names",
    "healthy",
    "last_error",
    "checked_at",
}


def insert(conn: Conn, server: dict[str, Any]) -> dict[str, Any] | None:
    """Insert the server unless the organization has one of that name (then None)."""
    return rows.insert(
        conn, "mcp_servers", server, json_columns=_JSON, on_conflict="(organization_id, server_name) DO NOTHING"
    )


def get(conn: Conn, organization_id: str, server_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    return rows.get_by_id(conn, "mcp_servers", server_id, organization_id=organization_id, for_update=for_update)


def get_by_name(conn: Conn, organization_id: str, server_name: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM mcp_servers WHERE organization_id = %s AND server_name = %s FOR UPDATE",
        (organization_id, server_name),
    ).fetchone()


def list_all(conn: Conn, organization_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT * FROM mcp_servers WHERE organization_id = %s ORDER BY created_at, id", (organization_id,)
    ).fetchall()


def update(conn: Conn, organization_id: str, server_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    if not changes:
        return get(conn, organization_id, server_id)
    assignments, values = rows.assignments(changes, json_columns=_JSON)
    assignments.append(sql.SQL("updated_at = now()"))
    return conn.execute(
        sql.SQL("UPDATE mcp_servers SET {} WHERE id = %s AND organization_id = %s RETURNING *").format(
            sql.SQL(", ").join(assignments)
        ),
        (*values, server_id, organization_id),
    ).fetchone()


def delete(conn: Conn, organization_id: str, server_id: str) -> bool:
    """Delete the server and its tools (detaching them from every agent)."""
    conn.execute(
        "DELETE FROM tools WHERE organization_id = %s AND tool_type = %s AND metadata -> 'mcp' ->> 'server_id' = %s",
        (organization_id, MCP_TOOL_TYPE, server_id),
    )
    cur = conn.execute("DELETE FROM mcp_servers WHERE id = %s AND organization_id = %s", (server_id, organization_id))
    return cur.rowcount == 1


def tools_of(conn: Conn, organization_id: str, server_id: str) -> list[dict[str, Any]]:
    """The tool rows the server contributed, by name."""
    return conn.execute(
        "SELECT * FROM tools WHERE organization_id = %s AND tool_type = %s"
        " AND metadata -> 'mcp' ->> 'server_id' = %s ORDER BY name",
        (organization_id, MCP_TOOL_TYPE, server_id),
    ).fetchall()


def tool_of(conn: Conn, organization_id: str, server_id: str, tool_id: str) -> dict[str, Any] | None:
    return conn.execute(
        "SELECT * FROM tools WHERE id = %s AND organization_id = %s AND tool_type = %s"
        " AND metadata -> 'mcp' ->> 'server_id' = %s",
        (tool_id, organization_id, MCP_TOOL_TYPE, server_id),
    ).fetchone()


def agents_with(conn: Conn, tool_ids: list[str]) -> dict[str, list[str]]:
    """For each of ``tool_ids``, the agents it is attached to (only tools attached somewhere)."""
    found = conn.execute(
        "SELECT tool_id, array_agg(agent_id ORDER BY agent_id) AS agents FROM agent_tools"
        " WHERE tool_id = ANY(%s) GROUP BY tool_id",
        (tool_ids,),
    ).fetchall()
    return {row["tool_id"]: list(row["agents"]) for row in found}
