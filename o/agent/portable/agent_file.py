"""What a Letta agent file (``.af``) carries beyond the agent's own settings: its tools with their
source and its messages. The file's JSON shapes are the API's (:mod:`o.api.agent_file`); reading and
writing the rows is here, so an import goes through the same domain functions as the API's own
create calls, and nothing of it is stored unless all of it is (one transaction, the caller's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from o.agent.transcript import text_of
from o.errors import InvalidInput
from o.ids import new_id
from o.store import bundle as store
from o.store.db import Conn
from o.tools import catalog
from o.tools.builtin import BUILTINS
from o.tools.catalog import ToolSpec
from o.tools.web.definitions import WEB_TOOLS

ROLES = frozenset({"system", "user", "assistant", "tool", "approval"})
# Letta's source_type "json" marks a tool whose schema came as JSON; its code is Python all the same
_PYTHON_SOURCE_TYPES = frozenset({"python", "json", None})


@dataclass
class FileTool:
    """One tool of an agent file (Letta's Tool shape, already read from JSON)."""

    name: str
    tool_type: str
    source_code: str | None
    source_type: str | None = "python"
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    args_json_schema: dict[str, Any] | None = None
    return_char_limit: int | None = None
    pip_requirements: list[dict[str, Any]] = field(default_factory=list)
    npm_requirements: list[dict[str, Any]] = field(default_factory=list)
    default_requires_approval: bool = False
    enable_parallel_execution: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class ResolvedTools:
    tool_ids: list[str] = field(default_factory=list)
    builtin_names: list[str] = field(default_factory=list)
    # Letta's own tools that O does not have (left out; the agent runs without them)
    unknown_builtins: list[str] = field(default_factory=list)


def resolve_tools(conn: Conn, organization_id: str, tools: list[FileTool], *, override: bool) -> ResolvedTools:
    """The organization's tools for a file's tools: a custom tool of the same name is reused (or, with
    ``override``, given the file's source), a new one is created from its source and must parse;
    Letta's built-in tools are O's built-ins of the same name (an outside-world one only where this
    server offers it: its record exists)."""
    resolved = ResolvedTools()
    offered = store.tool_ids_by_name(conn, organization_id, [t.name for t in tools if t.name in WEB_TOOLS])
    for tool in tools:
        if tool.tool_type != "custom" and not tool.source_code:
            if tool.name in BUILTINS or tool.name in offered:
                resolved.builtin_names.append(tool.name)
            else:
                resolved.unknown_builtins.append(tool.name)
            continue
        existing = store.tool_ids_by_name(conn, organization_id, [tool.name]).get(tool.name)
        if existing is not None and not override:
            resolved.tool_ids.append(existing)
            continue
        spec = _spec(tool)
        try:
            row = (
                catalog.upsert(conn, organization_id, spec) if existing else catalog.create(conn, organization_id, spec)
            )
        except InvalidInput as exc:
            raise InvalidInput(
                f"the agent file's tool {tool.name!r} cannot be used: {exc.message}", tool=tool.name
            ) from exc
        if row["name"] != tool.name:
            raise InvalidInput(
                f"the agent file's tool {tool.name!r} defines a function named {row['name']!r}", tool=tool.name
            )
        resolved.tool_ids.append(row["id"])
    return resolved


def _spec(tool: FileTool) -> ToolSpec:
    if tool.source_type not in _PYTHON_SOURCE_TYPES:
        raise InvalidInput(f"the agent file's tool {tool.name!r} is {tool.source_type!r} code; O runs Python tools")
    return ToolSpec(
        source_code=tool.source_code or "",
        description=tool.description,
        tags=tool.tags,
        json_schema=tool.json_schema,
        args_json_schema=tool.args_json_schema,
        return_char_limit=tool.return_char_limit or ToolSpec.return_char_limit,
        pip_requirements=tool.pip_requirements,
        npm_requirements=tool.npm_requirements,
        default_requires_approval=tool.default_requires_approval,
        enable_parallel_execution=tool.enable_parallel_execution,
        metadata=tool.metadata,
    )


@dataclass
class FileMessage:
    """One message of an agent file, in the stored form (content parts, OpenAI-style tool calls)."""

    role: str
    content: list[dict[str, Any]]
    in_context: bool
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    tool_returns: list[dict[str, Any]] | None = None
    otid: str | None = None
    sender_id: str | None = None
    group_id: str | None = None
    created_at: datetime | None = None


def add_messages(conn: Conn, organization_id: str, agent_id: str, messages: list[FileMessage]) -> int:
    """Store the file's messages as the agent's history, in order; returns how many."""
    rows = []
    for message in messages:
        if message.role not in ROLES:
            raise InvalidInput(f"the agent file has a message of role {message.role!r}; roles are {sorted(ROLES)}")
        row: dict[str, Any] = {
            "id": new_id("message"),
            "organization_id": organization_id,
            "agent_id": agent_id,
            "role": message.role,
            "content": message.content,
            "text": text_of(message.content),
            "name": message.name,
            "tool_calls": message.tool_calls,
            "tool_call_id": message.tool_call_id,
            "tool_returns": message.tool_returns,
            "otid": message.otid,
            "sender_id": message.sender_id,
            "group_id": message.group_id,
            "in_context": message.in_context,
            "created_at": message.created_at or datetime.now(UTC),
        }
        rows.append(row)
    store.insert_messages(conn, rows)
    return len(rows)


@dataclass
class AgentContents:
    """What an agent file carries of an agent beyond the API's view of it."""

    tools: list[dict[str, Any]]
    messages: list[dict[str, Any]]


def contents(conn: Conn, organization_id: str, agent_id: str, *, messages: bool = True) -> AgentContents:
    return AgentContents(
        tools=store.tools_for_export(conn, agent_id),
        messages=store.messages_for_export(conn, organization_id, agent_id) if messages else [],
    )
