"""Letta's built-in tools, with Letta's names and arguments.

Each runs inside the transaction that stores its tool-return message (the caller's
``conn``), so a memory edit and the record that it happened commit together: a replayed
step finds the return message and does not apply the edit a second time.

A tool signals a problem the model should see by raising :class:`ToolError` (or any
``OError``: a missing block, a read-only block, a value over the limit); the step turns it
into an error tool result and the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from o.errors import OError
from o.memory import archival, recall
from o.memory import blocks as memory_blocks
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource
from o.store import runs as run_store
from o.store.db import Conn
from o.tools import evaluator_lock, file_tools


class ToolError(Exception):
    """A failure the model is told about as the tool's result."""


@dataclass(frozen=True)
class ToolContext:
    conn: Conn
    organization_id: str
    agent_id: str
    run_id: str | None = None
    # archival and recall search embed with the agent's model, through the process's embedders
    embedders: EmbedderSource = LOCAL_EMBEDDERS


@dataclass(frozen=True)
class Builtin:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., str]
    tool_type: str = "letta_core"


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_STR = {"type": "string"}


# -- messaging ------------------------------------------------------------------------------------


def send_message(ctx: ToolContext, message: str) -> str:
    del ctx, message
    return "Sent message successfully."


# -- core memory ----------------------------------------------------------------------------------


def _edit(ctx: ToolContext, label: str, fn: Callable[[str], str]) -> dict[str, Any]:
    return memory_blocks.edit_value(ctx.conn, ctx.organization_id, ctx.agent_id, label, fn)


def core_memory_append(ctx: ToolContext, label: str, content: str) -> str:
    _edit(ctx, label, lambda value: (value + "\n" + content) if value else content)
    return f"The core memory block with label `{label}` has been edited."


def core_memory_replace(ctx: ToolContext, label: str, old_content: str, new_content: str) -> str:
    def replace(value: str) -> str:
        if not old_content or old_content not in value:
            raise ToolError(f"Old content '{old_content}' not found in memory block '{label}'")
        return value.replace(old_content, new_content)

    _edit(ctx, label, replace)
    return f"The core memory block with label `{label}` has been edited."


def memory_insert(ctx: ToolContext, label: str, new_str: str, insert_line: int = -1) -> str:
    def insert(value: str) -> str:
        lines = value.split("\n") if value else []
        if insert_line == -1:
            at = len(lines)
        elif 0 <= insert_line <= len(lines):
            at = insert_line
        else:
            raise ToolError(
                f"Invalid `insert_line` parameter: {insert_line}. It should be within the range of lines "
                f"of the memory block: [0, {len(lines)}], or -1 to append to the end of the memory."
            )
        return "\n".join(lines[:at] + new_str.split("\n") + lines[at:])

    _edit(ctx, label, insert)
    return f"The core memory block with label `{label}` has been edited."


def memory_replace(ctx: ToolContext, label: str, old_str: str, new_str: str) -> str:
    def replace(value: str) -> str:
        occurrences = value.count(old_str) if old_str else 0
        if occurrences == 0:
            raise ToolError(
                f"No replacement was performed, old_str `{old_str}` did not appear verbatim in memory "
                f"block with label `{label}`."
            )
        if occurrences > 1:
            raise ToolError(
                f"No replacement was performed. Multiple occurrences of old_str `{old_str}` in memory "
                f"block with label `{label}`: {occurrences}. Please ensure it is unique."
            )
        return value.replace(old_str, new_str)

    _edit(ctx, label, replace)
    return f"The core memory block with label `{label}` has been edited."


def memory_rethink(ctx: ToolContext, label: str, new_memory: str) -> str:
    _edit(ctx, label, lambda _value: new_memory)
    return f"The core memory block with label `{label}` has been rewritten."


# -- archival and recall memory ---------------------------------------------------------------------


def archival_memory_insert(ctx: ToolContext, content: str, tags: list[str] | None = None) -> str:
    archival.insert(ctx.conn, ctx.organization_id, ctx.agent_id, content, tags=tags, embedders=ctx.embedders)
    return "Inserted into archival memory."


def archival_memory_delete(ctx: ToolContext, passage_id: str) -> str:
    archival.delete(ctx.conn, ctx.organization_id, ctx.agent_id, passage_id)
    return "Deleted from archival memory."


def archival_memory_search(
    ctx: ToolContext,
    query: str,
    tags: list[str] | None = None,
    tag_match_mode: str = "any",
    top_k: int | None = None,
    start_datetime: str | None = None,
    end_datetime: str | None = None,
) -> str:
    results = archival.search(
        ctx.conn,
        ctx.organization_id,
        ctx.agent_id,
        query,
        tags=tags,
        tag_match_mode=tag_match_mode,
        top_k=top_k,
        start_datetime=start_datetime,
        end_datetime=end_datetime,
        embedders=ctx.embedders,
    )
    return json.dumps(results, default=str)


def conversation_search(
    ctx: ToolContext,
    query: str,
    roles: list[str] | None = None,
    limit: int | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    this_conversation_only: bool = False,
) -> str:
    within = None
    if this_conversation_only:
        run = run_store.get(ctx.conn, ctx.run_id, organization_id=ctx.organization_id) if ctx.run_id else None
        within = recall.Conversation(run.conversation_id if run is not None else None)
    results = recall.search(
        ctx.conn,
        ctx.organization_id,
        ctx.agent_id,
        query,
        roles=roles,
        limit=limit,
        start_date=start_date,
        end_date=end_date,
        embedders=ctx.embedders,
        within=within,
    )
    return json.dumps(results, default=str)


# -- sleep-time ------------------------------------------------------------------------------------


def finish_rethinking_memory(ctx: ToolContext) -> str:
    del ctx
    return "Finished rethinking memory."


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin(
            "send_message",
            "Sends a message to the human user.",
            _schema(
                {"message": {**_STR, "description": "Message contents. All unicode (including emojis) are supported."}},
                ["message"],
            ),
            send_message,
        ),
        Builtin(
            "core_memory_append",
            "Append to the contents of core memory.",
            _schema(
                {
                    "label": {**_STR, "description": "Section of the memory to be edited."},
                    "content": {
                        **_STR,
                        "description": "Content to write to the memory. All unicode (including emojis) are supported.",
                    },
                },
                ["label", "content"],
            ),
            core_memory_append,
            "letta_memory_core",
        ),
        Builtin(
            "core_memory_replace",
            "Replace the contents of core memory. To delete memories, use an empty string for new_content.",
            _schema(
                {
                    "label": {**_STR, "description": "Section of the memory to be edited."},
                    "old_content": {**_STR, "description": "String to replace. Must be an exact match."},
                    "new_content": {**_STR, "description": "Content to write to the memory."},
                },
                ["label", "old_content", "new_content"],
            ),
            core_memory_replace,
            "letta_memory_core",
        ),
        Builtin(
            "memory_insert",
            "The memory_insert command allows you to insert text at a specific location in a memory block.",
            _schema(
                {
                    "label": {**_STR, "description": "Section of the memory to be edited, identified by its label."},
                    "new_str": {**_STR, "description": "The text to insert. Do not include line number prefixes."},
                    "insert_line": {
                        "type": "integer",
                        "description": "The line number after which to insert the text "
                        "(0 for beginning of file). Defaults to -1 (end).",
                    },
                },
                ["label", "new_str"],
            ),
            memory_insert,
            "letta_memory_core",
        ),
        Builtin(
            "memory_replace",
            "The memory_replace command allows you to replace a specific string in a memory block with a new string. "
            "old_str must match exactly one place in the block.",
            _schema(
                {
                    "label": {**_STR, "description": "Section of the memory to be edited, identified by its label."},
                    "old_str": {
                        **_STR,
                        "description": "The text to replace (must match exactly, including whitespace).",
                    },
                    "new_str": {**_STR, "description": "The new text to insert in place of the old text."},
                },
                ["label", "old_str", "new_str"],
            ),
            memory_replace,
            "letta_memory_core",
        ),
        Builtin(
            "memory_rethink",
            "The memory_rethink command allows you to completely rewrite the contents of a memory block.",
            _schema(
                {
                    "label": {**_STR, "description": "The memory block to be rewritten, identified by its label."},
                    "new_memory": {**_STR, "description": "The new memory contents."},
                },
                ["label", "new_memory"],
            ),
            memory_rethink,
            "letta_sleeptime_core",
        ),
        Builtin(
            "archival_memory_insert",
            "Add information to long-term archival memory for later retrieval.",
            _schema(
                {
                    "content": {**_STR, "description": "Content to write to the memory."},
                    "tags": {"type": "array", "items": _STR, "description": "Optional list of tags."},
                },
                ["content"],
            ),
            archival_memory_insert,
        ),
        Builtin(
            "archival_memory_search",
            "Search archival memory using semantic (embedding-based) search with optional tag and date filters.",
            _schema(
                {
                    "query": {**_STR, "description": "String to search for using semantic similarity."},
                    "tags": {"type": "array", "items": _STR, "description": "Optional list of tags to filter by."},
                    "tag_match_mode": {"type": "string", "enum": ["any", "all"]},
                    "top_k": {"type": "integer", "description": "Maximum number of results to return."},
                    "start_datetime": {**_STR, "description": "ISO 8601 lower bound on creation time."},
                    "end_datetime": {**_STR, "description": "ISO 8601 upper bound on creation time."},
                },
                ["query"],
            ),
            archival_memory_search,
        ),
        Builtin(
            "conversation_search",
            "Search prior conversation history (recall memory) using hybrid search.",
            _schema(
                {
                    "query": {**_STR, "description": "String to search for."},
                    "roles": {"type": "array", "items": {"type": "string", "enum": ["assistant", "user", "tool"]}},
                    "limit": {"type": "integer", "description": "Maximum number of results to return."},
                    "start_date": {**_STR, "description": "Start of the date range (ISO 8601)."},
                    "end_date": {**_STR, "description": "End of the date range (ISO 8601)."},
                    "this_conversation_only": {
                        "type": "boolean",
                        "description": "Search only the conversation this message is in (default: every conversation).",
                    },
                },
                ["query"],
            ),
            conversation_search,
        ),
        # Offered only by the sleep-time pass (o.evolution.sleeptime), never in an agent's default tools.
        Builtin(
            "archival_memory_delete",
            "Delete an archival passage, for example one that another passage already covers.",
            _schema({"passage_id": {**_STR, "description": "The id of the passage to delete."}}, ["passage_id"]),
            archival_memory_delete,
            "letta_sleeptime_core",
        ),
        Builtin(
            "finish_rethinking_memory",
            "Call when memory is reorganized: ends the sleep-time pass.",
            _schema({}, []),
            finish_rethinking_memory,
            "letta_sleeptime_core",
        ),
    ]
}

# The file tools: not base tools; their records are made and attached when a folder is (o.agent.folders).
BUILTINS.update(
    {t.name: Builtin(t.name, t.description, t.parameters, t.fn, file_tools.TOOL_TYPE) for t in file_tools.SPECS}
)

# The tools an agent gets when it has none attached, per Letta agent type.
_CORE_V1 = ["send_message", "core_memory_append", "core_memory_replace"]
_CORE_V2 = [
    "send_message",
    "memory_insert",
    "memory_replace",
    "memory_rethink",
    "core_memory_append",
    "core_memory_replace",
]
_SEARCH = ["archival_memory_insert", "archival_memory_search", "conversation_search"]
DEFAULT_TOOLS: dict[str, list[str]] = {"memgpt_agent": _CORE_V1 + _SEARCH}
DEFAULT_FOR_OTHER_TYPES = _CORE_V2 + _SEARCH


def default_tools(agent_type: str) -> list[str]:
    return DEFAULT_TOOLS.get(agent_type, DEFAULT_FOR_OTHER_TYPES)


# Letta's base tools: every organization has one tool record for each (o.tools.base), which an agent
# is given on creation (include_base_tools) and which can be attached and detached like any tool.
BASE_TOOLS: tuple[str, ...] = tuple(dict.fromkeys(_CORE_V1 + _CORE_V2 + _SEARCH))


def base_schema(name: str) -> dict[str, Any]:
    """The JSON schema a base tool's record shows: Letta's name, description and parameters."""
    tool = BUILTINS[name]
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def run_builtin(ctx: ToolContext, name: str, args: dict[str, Any]) -> str:
    """Run built-in ``name``; raises ToolError (or OError) for the model to see."""
    tool = BUILTINS[name]
    allowed = set(tool.parameters["properties"])
    unknown = set(args) - allowed
    if unknown:
        raise ToolError(f"{name}() got unexpected arguments: {sorted(unknown)}")
    missing = [p for p in tool.parameters["required"] if p not in args]
    if missing:
        raise ToolError(f"{name}() missing required arguments: {missing}")
    # the agent loop records the attempt before it gets here (o.agent.step.tools_phase); refused either way
    refused = evaluator_lock.refusal(name, args)
    if refused is not None:
        raise ToolError(refused)
    try:
        return tool.fn(ctx, **args)
    except (ToolError, OError):
        raise
    except (TypeError, ValueError) as exc:
        raise ToolError(f"{name}() failed: {exc}") from exc
