"""Letta's base tools as tool records of an organization.

The built-ins themselves run in-process (:mod:`o.tools.builtin`); what an organization holds is one
``tools`` row per base tool (tool_type ``letta_core``, ``letta_memory_core`` or
``letta_sleeptime_core``), so the base tools are listed by ``/v1/tools/``, show in an agent's
``tools`` and are attached and detached by id like any tool. An agent runs a base tool only while
that record is attached to it.

The outside-world built-ins (``run_code``, ``fetch_webpage``, ``web_search``: :mod:`o.tools.web`) get
records only where the process offers them (``offered``: web_search only with a search provider); they
run outside the storing transaction, like a user's tool.

Records are made when an organization first needs them (migration 011 made those of the
organizations that existed before) and refreshed when this release describes a built-in differently.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from o.ids import new_id
from o.store import tools as tool_store
from o.store.db import Conn
from o.tools.builtin import BASE_TOOLS, BUILTINS, base_schema, default_tools
from o.tools.web.definitions import WEB_TOOLS

# what a user may change on a base tool's record: not what it is (its name, code and schema are Letta's)
BASE_TOOL_SETTINGS = frozenset(
    {"tags", "metadata", "default_requires_approval", "return_char_limit", "enable_parallel_execution"}
)


def is_base(tool: dict[str, Any]) -> bool:
    """Whether a tools row is the record of one of Letta's base tools (run in-process, not sandboxed)."""
    name = tool.get("name")
    return str(tool.get("tool_type") or "").startswith("letta_") and (name in BUILTINS or name in WEB_TOOLS)


def is_web(tool: dict[str, Any]) -> bool:
    """Whether a tools row is the record of an outside-world built-in (run outside any transaction)."""
    return is_base(tool) and tool.get("name") in WEB_TOOLS


def ensure(
    conn: Conn, organization_id: str, offered: Collection[str] = (), *, names: tuple[str, ...] = BASE_TOOLS
) -> dict[str, dict[str, Any]]:
    """The organization's records of the built-ins ``names`` (the base tools unless told), made or
    refreshed as needed; with the web tools among ``offered`` (what this process can run)."""
    have = {row["name"]: row for row in tool_store.letta_tools(conn, organization_id)}
    names = (*names, *(name for name in WEB_TOOLS if name in offered))
    for name in names:
        wanted = _wanted(name)
        row = have.get(name)
        if row is None:
            row = tool_store.insert_unless_present(conn, _record(organization_id, name, wanted))
            if row is None:  # a concurrent request made it (or a tool of that name is not a base tool)
                row = tool_store.get_by_name(conn, organization_id, name)
                if row is None or not is_base(row):
                    continue
        elif any(row[key] != value for key, value in wanted.items()):
            row = tool_store.update(conn, organization_id, row["id"], wanted) or row
        have[name] = row
    return {name: have[name] for name in names if name in have}


def _wanted(name: str) -> dict[str, Any]:
    """What a base tool's record says of it in this release."""
    if name in BUILTINS:
        builtin = BUILTINS[name]
        return {"description": builtin.description, "tool_type": builtin.tool_type, "json_schema": base_schema(name)}
    web = WEB_TOOLS[name]
    return {"description": web.description, "tool_type": web.tool_type, "json_schema": web.schema()}


def _record(organization_id: str, name: str, wanted: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": new_id("tool"),
        "organization_id": organization_id,
        "name": name,
        "source_type": "python",
        "source_code": None,
        "tags": [],
        "metadata": {},
        # a page or a search says more than a memory edit: the web tools start with a larger limit
        **({"return_char_limit": WEB_TOOLS[name].return_char_limit} if name in WEB_TOOLS else {}),
        **wanted,
    }


def default_ids(conn: Conn, organization_id: str, agent_type: str) -> list[str]:
    """The ids of the base tools an agent of ``agent_type`` is given when it is created."""
    records = ensure(conn, organization_id)
    return [records[name]["id"] for name in default_tools(agent_type) if name in records]


def attach_like(conn: Conn, organization_id: str, agent_id: str, source_agent_id: str) -> None:
    """Give ``agent_id`` (of ``organization_id``) the base tools ``source_agent_id`` has: how a shadow
    copy in a scratch organization keeps the built-ins of the agent it copies (revisions name only an
    agent's own tools)."""
    names = {row["name"] for row in tool_store.for_agent(conn, source_agent_id) if is_base(row)}
    # the source's outside-world built-ins were offered where it got them
    records = ensure(conn, organization_id, offered=names)
    for name in sorted(names & set(records)):
        tool_store.attach(conn, agent_id, records[name]["id"])
