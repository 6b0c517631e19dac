"""Bringing a server's tool rows in line with what it lists (create and refresh), in one transaction.

A tool the server no longer lists is deleted when no agent has it; when agents have it, it stays
attached (marked ``missing`` in its metadata, so a call reaches the server and comes back as a tool
error) and is reported with those agents, so nobody's agent loses a tool without being told.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from o.ids import new_id
from o.store import mcp_servers as store
from o.store import tools as tool_store
from o.store.db import Conn
from o.tools.mcp.results import OfferedTool, Skipped


@dataclass
class SyncReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    # tools the server stopped listing that agents still have: name, id, and those agents
    disappeared: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "disappeared": self.disappeared,
            "skipped": self.skipped,
        }


def sync_tools(
    conn: Conn, server: dict[str, Any], offered: list[OfferedTool], skipped: list[Skipped], agent_id: str | None = None
) -> SyncReport:
    """Make the server's tool rows those ``offered``; ``agent_id`` narrows the disappeared tools
    reported to that agent's."""
    org = server["organization_id"]
    report = SyncReport(skipped=[s.to_dict() for s in skipped])
    existing = {row["name"]: row for row in store.tools_of(conn, org, server["id"])}
    for tool in offered:
        row = existing.pop(tool.name, None)
        if row is None:
            _add(conn, server, tool, report)
            continue
        wanted = {"description": tool.description, "json_schema": tool.json_schema(), "metadata": _metadata(server)}
        if any(row[key] != value for key, value in wanted.items()):
            tool_store.update(conn, org, row["id"], wanted)
            report.updated.append(tool.name)
        else:
            report.unchanged.append(tool.name)
    gone = list(existing.values())
    users = store.agents_with(conn, [row["id"] for row in gone])
    for row in gone:
        agents = users.get(row["id"], [])
        if not agents:
            tool_store.delete(conn, org, row["id"])
            report.removed.append(row["name"])
            continue
        tool_store.update(conn, org, row["id"], {"metadata": _metadata(server, missing=True)})
        if agent_id is None or agent_id in agents:
            shown = agents if agent_id is None else [agent_id]
            report.disappeared.append({"name": row["name"], "tool_id": row["id"], "agent_ids": shown})
    return report


def _add(conn: Conn, server: dict[str, Any], tool: OfferedTool, report: SyncReport) -> None:
    row = tool_store.insert_unless_present(
        conn,
        {
            "id": new_id("tool"),
            "organization_id": server["organization_id"],
            "name": tool.name,
            "description": tool.description,
            "tool_type": store.MCP_TOOL_TYPE,
            "source_type": "mcp",
            "source_code": None,
            "json_schema": tool.json_schema(),
            "tags": [f"mcp:{server['server_name']}"],
            "metadata": _metadata(server),
        },
    )
    if row is None:
        reason = "another tool of the organization has this name"
        report.skipped.append({"name": tool.name, "reason": reason})
    else:
        report.added.append(tool.name)


def _metadata(server: dict[str, Any], *, missing: bool = False) -> dict[str, Any]:
    mcp: dict[str, Any] = {"server_id": server["id"], "server_name": server["server_name"]}
    if missing:
        mcp["missing"] = True
    return {"mcp": mcp}
