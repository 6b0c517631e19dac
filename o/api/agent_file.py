"""Letta's agent file (``.af``, the public letta-ai/agent-file format, "v2": separate ``agents``,
``blocks`` and ``tools`` lists that refer to each other by file-local ids such as ``tool-0``).

The agent's entry is the API's own agent shape: exported from :class:`AgentState` and imported
through :class:`CreateAgent`, so a field the API reads and shows under one name travels without a
change here. The file's blocks become the agent's memory blocks; its tools are matched or created
(:mod:`o.agent.portable.agent_file`); its messages become the agent's history; the archives attached
to the agent travel in the file's ``metadata`` (:mod:`o.agent.portable.archives`). What O cannot honour
(groups, files, folders, MCP servers, skills, Letta's legacy v1 layout) is refused by name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from o import __version__
from o.agent import lifecycle
from o.agent.portable import agent_file as portable
from o.agent.portable import archives as portable_archives
from o.agent.portable.agent_file import FileMessage, FileTool
from o.api.schemas.agent_state import AgentState
from o.api.schemas.agents import CreateAgent, llm_config_from_handle
from o.api.schemas.blocks import CreateBlock
from o.errors import InvalidInput
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource
from o.store.db import Conn
from o.tools.secrets.envelope import SecretBox

logger = logging.getLogger(__name__)

# AgentState fields that are the server's (ids, times) or that the file carries in its own lists
_NOT_IN_ENTRY = frozenset(
    {"id", "created_at", "updated_at", "memory", "blocks", "tools", "tool_ids", "sources", "model", "embedding"}
)
# parts of a file O has nothing to put in: importing it without them would lose what they hold
_UNSUPPORTED = ("groups", "files", "sources", "mcp_servers", "skills")
_M = TypeVar("_M", bound=BaseModel)


def export(conn: Conn, organization_id: str, agent_id: str, *, scrub_messages: bool = False) -> dict[str, Any]:
    """The agent as an agent file (a JSON object)."""
    view = lifecycle.get(conn, organization_id, agent_id)
    held = portable.contents(conn, organization_id, agent_id, messages=not scrub_messages)
    state = AgentState.from_view(view).model_dump(mode="json")
    block_ids = {b["id"]: f"block-{i}" for i, b in enumerate(state["blocks"])}
    tool_ids = {t["id"]: f"tool-{i}" for i, t in enumerate(held.tools)}
    message_ids = {m["id"]: f"message-{i}" for i, m in enumerate(held.messages)}
    entry = {k: v for k, v in state.items() if k not in _NOT_IN_ENTRY}
    # metadata.revision marks which of this server's revisions runs; a file carries the configuration,
    # not its history (O's bundle carries that), and the imported agent starts at its own revision 1
    entry["metadata"] = {k: v for k, v in (state["metadata"] or {}).items() if k != "revision"}
    entry.update(
        id="agent-0",
        memory_blocks=[],
        tools=[],
        tool_ids=list(tool_ids.values()),
        block_ids=list(block_ids.values()),
        source_ids=[],
        folder_ids=None,
        # values never leave the server: the names travel, the importer gives values
        tool_exec_environment_variables={v["key"]: "" for v in state["tool_exec_environment_variables"]},
        secrets=None,
        messages=[_message(m, message_ids[m["id"]]) for m in held.messages],
        in_context_message_ids=[message_ids[m["id"]] for m in held.messages if m["in_context"]],
        files_agents=[],
        group_ids=[],
    )
    return {
        "agents": [entry],
        "groups": [],
        "blocks": [{**_block(b), "id": block_ids[b["id"]]} for b in state["blocks"]],
        "files": [],
        "sources": [],
        "tools": [_tool(t, tool_ids[t["id"]]) for t in held.tools],
        "mcp_servers": [],
        # Letta's format has no archives: O's ride in the free-form metadata (o.agent.portable.archives)
        "metadata": {
            "exported_by": f"o {__version__}",
            "archives": portable_archives.export(conn, organization_id, agent_id, "agent-0"),
        },
        "created_at": datetime.now(UTC).isoformat(),
    }


def _block(block: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in block.items() if k not in ("id", "created_at", "updated_at")}


def _tool(row: dict[str, Any], file_id: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "tool_type": row["tool_type"],
        "description": row["description"],
        "source_type": row["source_type"],
        "name": row["name"],
        "tags": row["tags"],
        "source_code": row["source_code"],
        "json_schema": row["json_schema"],
        "args_json_schema": row["args_json_schema"],
        "return_char_limit": row["return_char_limit"],
        "pip_requirements": row["pip_requirements"],
        "npm_requirements": row["npm_requirements"],
        "default_requires_approval": row["default_requires_approval"],
        "enable_parallel_execution": row["enable_parallel_execution"],
        "metadata_": row["metadata"],
    }


def _message(row: dict[str, Any], file_id: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": file_id,
        "agent_id": "agent-0",
        "role": row["role"],
        "content": row["content"],
        "name": row["name"],
        "otid": row["otid"],
        "sender_id": row["sender_id"],
        "group_id": row["group_id"],
        "tool_calls": row["tool_calls"],
        "tool_call_id": row["tool_call_id"],
        "tool_returns": row["tool_returns"] or [],
        "created_at": row["created_at"].isoformat(),
    }


class ImportOptions(BaseModel):
    """The import call's options (Letta's names; the deprecated ones are aliases of the new)."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    append_copy_suffix: bool = False
    model: str | None = None
    strip_messages: bool = False
    override_existing_tools: bool = False
    secrets: dict[str, str] = Field(default_factory=dict)


class _FileToolIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = Field(min_length=1)
    tool_type: str = "custom"
    source_code: str | None = None
    source_type: str | None = "python"
    description: str | None = None
    tags: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    args_json_schema: dict[str, Any] | None = None
    return_char_limit: int | None = None
    pip_requirements: list[dict[str, Any]] | None = None
    npm_requirements: list[dict[str, Any]] | None = None
    default_requires_approval: bool | None = None
    enable_parallel_execution: bool | None = None
    metadata_: dict[str, Any] | None = None


class _FileMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    role: str
    content: list[dict[str, Any]] | str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    tool_returns: list[dict[str, Any]] | None = None
    otid: str | None = None
    sender_id: str | None = None
    group_id: str | None = None
    created_at: datetime | None = None


def parse(raw: bytes) -> dict[str, Any]:
    """The file's JSON object. Files saved from a JSON string (the export's body written with
    ``json.dumps``) hold the object as a string: read that too."""
    try:
        data = json.loads(raw)
        if isinstance(data, str):
            data = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput(f"the agent file is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("agents"), list) or not data["agents"]:
        raise InvalidInput("the agent file has no agents (expected an object with an 'agents' list)")
    if "agent_type" in data and "agents" not in data:
        raise InvalidInput("Letta's legacy (v1) agent file layout is not supported; export it again as v2")
    for part in _UNSUPPORTED:
        if data.get(part):
            raise InvalidInput(f"the agent file has {part}, which O cannot import", part=part)
    return data


@dataclass(frozen=True)
class Imported:
    agent_id: str
    # Letta built-in tools the file's agent had and O has not: the agent was made without them
    skipped_tools: list[str]


def import_file(
    conn: Conn,
    organization_id: str,
    data: dict[str, Any],
    options: ImportOptions,
    *,
    secrets: SecretBox,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
) -> list[Imported]:
    """Create every agent of the file (in the caller's transaction), in file order, and the archives
    the file carries (O's files: ``metadata.archives``), attached to the agents that had them."""
    blocks = _by_id(data.get("blocks") or [], "blocks")
    tools = {k: _read(_FileToolIn, v, f"tools[{k}]") for k, v in _by_id(data.get("tools") or [], "tools").items()}
    archives = _archives(data)
    imported = [
        _import_agent(conn, organization_id, entry, blocks, tools, options, secrets=secrets) for entry in data["agents"]
    ]
    file_ids = {str(e.get("id")): a.agent_id for e, a in zip(data["agents"], imported, strict=True)}
    portable_archives.import_all(conn, organization_id, archives, file_ids, embedders=embedders)
    for agent in imported:
        if agent.skipped_tools:
            logger.warning(
                "an imported agent's Letta built-in tools that O does not have were left out",
                extra={"agent_id": agent.agent_id, "tools": agent.skipped_tools},
            )
    return imported


def _import_agent(
    conn: Conn,
    organization_id: str,
    entry: Any,
    blocks: dict[str, dict[str, Any]],
    tools: dict[str, _FileToolIn],
    options: ImportOptions,
    *,
    secrets: SecretBox,
) -> Imported:
    if not isinstance(entry, dict):
        raise InvalidInput("each of the agent file's agents must be an object")
    used_tools = [_known(tools, i, "tool") for i in entry.get("tool_ids") or []]
    resolved = portable.resolve_tools(
        conn, organization_id, [_file_tool(t) for t in used_tools], override=options.override_existing_tools
    )
    create = _create_agent(entry, [_known(blocks, i, "block") for i in entry.get("block_ids") or []], options)
    spec = create.to_spec()
    spec.tool_ids = resolved.tool_ids
    spec.tool_names = resolved.builtin_names
    # the file lists every tool the agent had, base tools included: exactly those are attached
    spec.include_base_tools = False
    view = lifecycle.create(conn, organization_id, spec, secrets=secrets)
    if not options.strip_messages:
        portable.add_messages(conn, organization_id, view.agent["id"], _messages(entry))
    return Imported(str(view.agent["id"]), resolved.unknown_builtins)


# set from elsewhere in the file (tools, blocks, variables), or views of what is: not read as given
_NOT_AS_GIVEN = (
    "tools",
    "tool_ids",
    "block_ids",
    "tool_exec_environment_variables",
    "secrets",
)


def _agent_fields(entry: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in entry.items() if k in CreateAgent.model_fields and v is not None}
    for key in _NOT_AS_GIVEN:
        fields.pop(key, None)
    if "llm_config" in fields:
        # model_settings is a view of llm_config with defaults filled in: applied on top, it would
        # turn every unset setting into an explicit one
        fields.pop("model_settings", None)
    return fields


def _create_agent(entry: dict[str, Any], blocks: list[dict[str, Any]], options: ImportOptions) -> CreateAgent:
    fields = _agent_fields(entry)
    fields["memory_blocks"] = [
        {k: v for k, v in b.items() if k in CreateBlock.model_fields and v is not None} for b in blocks
    ]
    fields["memory_blocks"] += entry.get("memory_blocks") or []
    variables = {**_carried_variables(entry), **options.secrets}
    if variables:
        fields["secrets"] = variables
    name = options.name or fields.get("name") or "agent"
    fields["name"] = f"{name}__copy" if options.append_copy_suffix else name
    if options.model:
        fields["llm_config"] = _llm_config(options.model)
    return _read(CreateAgent, fields, "agents[]")


def _carried_variables(entry: dict[str, Any]) -> dict[str, str]:
    """Tool variable values a file carries (O's own exports carry none; the import call's win)."""
    carried = entry.get("tool_exec_environment_variables")
    if not isinstance(carried, dict):
        return {}
    return {k: v for k, v in carried.items() if isinstance(v, str) and v}


def _llm_config(handle: str) -> dict[str, Any]:
    try:
        return llm_config_from_handle(handle)
    except ValueError as exc:  # the handle's form, or a provider O cannot call
        raise InvalidInput(f"model: {exc}") from exc


def _messages(entry: dict[str, Any]) -> list[FileMessage]:
    raw = entry.get("messages") or []
    in_context = set(entry.get("in_context_message_ids") or [])
    read = [_read(_FileMessageIn, m, f"messages[{i}]") for i, m in enumerate(raw)]
    # Letta's first in-context message is the system prompt it compiled; O compiles its own
    if read and read[0].role == "system" and read[0].id in in_context:
        read = read[1:]
    return [
        FileMessage(
            role=m.role,
            content=[{"type": "text", "text": m.content}] if isinstance(m.content, str) else (m.content or []),
            in_context=m.id in in_context if in_context else True,
            name=m.name,
            tool_calls=m.tool_calls,
            tool_call_id=m.tool_call_id,
            tool_returns=m.tool_returns,
            otid=m.otid,
            sender_id=m.sender_id,
            group_id=m.group_id,
            created_at=m.created_at,
        )
        for m in read
    ]


def _file_tool(t: _FileToolIn) -> FileTool:
    return FileTool(
        name=t.name,
        tool_type=t.tool_type,
        source_code=t.source_code,
        source_type=t.source_type,
        description=t.description,
        tags=t.tags or [],
        json_schema=t.json_schema,
        args_json_schema=t.args_json_schema,
        return_char_limit=t.return_char_limit,
        pip_requirements=t.pip_requirements or [],
        npm_requirements=t.npm_requirements or [],
        default_requires_approval=bool(t.default_requires_approval),
        enable_parallel_execution=bool(t.enable_parallel_execution),
        metadata=t.metadata_ or {},
    )


def _archives(data: dict[str, Any]) -> list[portable_archives.FileArchive]:
    metadata = data.get("metadata")
    carried = metadata.get("archives") if isinstance(metadata, dict) else None
    if carried is None:
        return []
    if not isinstance(carried, list):
        raise InvalidInput("the agent file's metadata.archives must be a list")
    return [_read(portable_archives.FileArchive, a, f"metadata.archives[{i}]") for i, a in enumerate(carried)]


def _by_id(items: Any, part: str) -> dict[str, Any]:
    if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("id"), str) for i in items):
        raise InvalidInput(f"the agent file's {part} must be a list of objects with ids")
    return {i["id"]: i for i in items}


def _known(items: dict[str, Any], file_id: Any, kind: str) -> Any:
    if not isinstance(file_id, str) or file_id not in items:
        raise InvalidInput(f"the agent file's agent names {kind} {file_id!r}, which the file does not have")
    return items[file_id]


def _read(model: type[_M], value: Any, where: str) -> _M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"the agent file's {where} is not valid: {problems}") from exc
