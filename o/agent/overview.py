"""An agent's context window from the outside: what is in it, emptying it, and compacting it now.

- :func:`overview` is Letta's ContextWindowOverview: the compiled prompt split into its parts
  (instructions, core memory, memory metadata, tool rules), the summary, the in-context messages
  and the tool schemas, each with its token count (``o.llm.tokens``).
- :func:`reset_messages` takes every in-context message out of the context window. Nothing is
  deleted: the messages stay in recall memory, where ``conversation_search`` and
  ``GET /messages`` still find them. The system prompt is compiled from the agent, not stored,
  so it is always kept.
- :func:`compact` forces the summary the step loop makes when the prompt passes its threshold
  (``o.agent.context.ensure_fits`` with ``force``), with a chosen share of the window to keep.

Message counts follow Letta, where the system prompt is the first in-context message: they are
the stored in-context messages plus one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from o.agent import context as ctx_window
from o.agent import lifecycle
from o.agent.prompt import (
    CORE_MEMORY_VARIABLE,
    compile_prompt,
    compose,
    memory_parts,
    render_blocks,
    render_metadata,
    render_tool_rules,
)
from o.agent.tools import AgentTool, agent_tools
from o.agent.transcript import text_of, to_chat
from o.errors import Conflict, InvalidInput
from o.ids import new_id
from o.llm import tokens
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.llm.types import ToolSpec
from o.store import agents as agent_store
from o.store import messages as message_store
from o.store import tools as tool_store
from o.store.db import Conn, Database

# Letta's boot sequence (``add_default_initial_messages``): a first send_message, its result, a login event.
BOOT_MESSAGE = "More human than human is our motto."
BOOT_THOUGHT = "Bootup sequence complete. Persona activated. Testing messaging functionality."
SEND_MESSAGE = "send_message"

# CompactionSettings.mode values that summarise everything but the newest turn.
ALL_MODES = ("all", "self_compact_all")


def _config(agent: dict[str, Any]) -> LLMConfig:
    try:
        return LLMConfig.model_validate(agent["llm_config"])
    except ValueError as exc:
        raise InvalidInput(f"the agent's llm_config is unusable: {exc}") from exc


def _tools(conn: Conn, agent: dict[str, Any]) -> list[AgentTool]:
    return agent_tools(agent, tool_store.for_agent(conn, agent["id"]))


def _is_summary(row: dict[str, Any]) -> bool:
    return row["role"] == "system" and (row.get("metadata") or {}).get("kind") == ctx_window.SUMMARY_KIND


def _message(row: dict[str, Any]) -> dict[str, Any]:
    """A stored message in the shape of Letta's ``Message`` (the raw form, not a LettaMessage)."""
    return {
        "id": row["id"],
        "agent_id": row["agent_id"],
        "role": row["role"],
        "content": row.get("content") or [],
        "name": row.get("name"),
        "tool_calls": row.get("tool_calls"),
        "tool_call_id": row.get("tool_call_id"),
        "tool_returns": row.get("tool_returns"),
        "step_id": row.get("step_id"),
        "run_id": row.get("run_id"),
        "otid": row.get("otid"),
        "sender_id": row.get("sender_id"),
        "group_id": row.get("group_id"),
        "created_at": row.get("created_at"),
    }


def _function(spec: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": spec.name, "description": spec.description, "parameters": spec.parameters},
    }


def overview(conn: Conn, organization_id: str, agent_id: str) -> dict[str, Any]:
    """Letta's ContextWindowOverview for the agent's next step.

    The ``num_tokens_*`` parts are plain o200k counts of each section; ``context_window_size_current``
    is the estimate the step loop compares with the window (:func:`o.agent.context.prompt_tokens`:
    chat framing included, scaled for the provider's tokenizer), so it is at least their sum.
    """
    agent = lifecycle.require(conn, organization_id, agent_id)
    config = _config(agent)
    parts = memory_parts(conn, agent_id)
    rules = agent.get("tool_rules") or []
    tz = agent.get("timezone")
    system = compose(
        agent["system"], parts.blocks, parts.last_edit, parts.recall, parts.archival, rules, agent.get("revision"), tz
    )
    instructions = agent["system"].replace(CORE_MEMORY_VARIABLE, "").strip()
    core_memory = render_blocks(parts.blocks)
    metadata = render_metadata(parts.last_edit, parts.recall, parts.archival, agent.get("revision"), tz)
    rules_text = render_tool_rules(rules)
    rows = message_store.in_context(conn, agent_id)
    summaries = [r for r in rows if _is_summary(r)]
    conversation = [r for r in rows if not _is_summary(r)]
    summary = "\n".join(text_of(r.get("content")) for r in summaries)
    specs = [t.spec() for t in _tools(conn, agent)]
    return {
        "context_window_size_max": config.context_window,
        "context_window_size_current": ctx_window.prompt_tokens(config, system, rows, specs),
        "num_messages": len(rows) + 1,
        "num_archival_memory": parts.archival,
        "num_recall_memory": parts.recall,
        "num_tokens_external_memory_summary": tokens.count_text(metadata),
        "external_memory_summary": metadata,
        "num_tokens_system": tokens.count_text(instructions),
        "system_prompt": system,
        "num_tokens_core_memory": tokens.count_text(core_memory),
        "core_memory": core_memory,
        "num_tokens_memory_filesystem": 0,
        "memory_filesystem": None,
        "num_tokens_tool_usage_rules": tokens.count_text(rules_text),
        "tool_usage_rules": rules_text or None,
        "num_tokens_directories": 0,
        "directories": None,
        "num_tokens_summary_memory": tokens.count_text(summary),
        "summary_memory": summary or None,
        "num_tokens_functions_definitions": tokens.count_tools(specs),
        "functions_definitions": [_function(s) for s in specs],
        "num_tokens_messages": sum(tokens.count_message(m) for m in to_chat(conversation)),
        "messages": [_message(r) for r in rows],
    }


def _boot_messages(agent: dict[str, Any], tool_names: list[str]) -> list[dict[str, Any]]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %I:%M:%S %p %Z%z")
    base = {
        "organization_id": agent["organization_id"],
        "agent_id": agent["id"],
        "in_context": True,
        "metadata": {"kind": "boot"},
    }
    out: list[dict[str, Any]] = []
    if SEND_MESSAGE in tool_names:
        call_id = new_id("call")
        arguments = json.dumps({"message": BOOT_MESSAGE})
        result = json.dumps({"status": "OK", "message": None, "time": now})
        out.append(
            {
                **base,
                "id": new_id("message"),
                "role": "assistant",
                "content": [{"type": "text", "text": BOOT_THOUGHT}],
                "text": BOOT_THOUGHT,
                "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": SEND_MESSAGE, "arguments": arguments}}
                ],
            }
        )
        out.append(
            {
                **base,
                "id": new_id("message"),
                "role": "tool",
                "name": SEND_MESSAGE,
                "content": [{"type": "text", "text": result}],
                "text": result,
                "tool_call_id": call_id,
                "tool_returns": [
                    {
                        "tool_call_id": call_id,
                        "status": "success",
                        "func_response": result,
                        "stdout": None,
                        "stderr": None,
                    }
                ],
            }
        )
    else:
        # an agent that answers in plain text (no send_message tool) is not shown a call it cannot make
        out.append(
            {
                **base,
                "id": new_id("message"),
                "role": "assistant",
                "content": [{"type": "text", "text": BOOT_MESSAGE}],
                "text": BOOT_MESSAGE,
            }
        )
    login = json.dumps({"type": "login", "last_login": "Never (first login)", "time": now})
    out.append(
        {**base, "id": new_id("message"), "role": "user", "content": [{"type": "text", "text": login}], "text": login}
    )
    return out


def reset_messages(
    conn: Conn, organization_id: str, agent_id: str, *, add_default_initial_messages: bool = False
) -> int:
    """Take every in-context message (summaries included) out of the context window; they stay in
    recall. With ``add_default_initial_messages`` Letta's boot messages start the new context.

    Returns how many messages left the context.
    """
    # The agent's row lock orders this after a concurrent reset or agent edit.
    agent = lifecycle.require(conn, organization_id, agent_id, for_update=True)
    evicted = message_store.evict_all(conn, agent_id)
    if add_default_initial_messages:
        names = [t.name for t in _tools(conn, agent)]
        message_store.insert_many(conn, _boot_messages(agent, names))
    # The model now learns of the old conversation only from the recall count in its system prompt:
    # a cached prompt compiled with an older count is made stale.
    agent_store.touch(conn, agent_id)
    return evicted


@dataclass(frozen=True)
class Compaction:
    num_messages_before: int
    num_messages_after: int
    summary: str


def compact(
    db: Database,
    llm: Callable[[LLMConfig], LLMClient],
    organization_id: str,
    agent_id: str,
    policy: ctx_window.ContextPolicy,
    *,
    mode: str | None = None,
    keep_share: float | None = None,
    conversation_id: str | None = None,
) -> Compaction:
    """Summarise the oldest in-context messages now, as the step loop does when forced.

    ``llm`` builds the client for the agent's config (``Engine.llm``). By default as much is evicted
    as brings the prompt to ``policy.target`` of the window, and at least the oldest turn; ``keep_share``
    sets that share instead; a mode in :data:`ALL_MODES` keeps only the newest user turn. Raises
    Conflict when there is nothing to summarise (no user turn after the first in-context message).
    ``conversation_id`` names the conversation (None: the agent's own history).
    """
    with db.transaction() as conn:
        agent = lifecycle.require(conn, organization_id, agent_id)
        config = _config(agent)
        system = compile_prompt(conn, agent).text
        rows = message_store.in_context(conn, agent_id, conversation_id)
        specs = [t.spec() for t in _tools(conn, agent)]
    if not any(r["role"] == "user" for r in rows[1:]):
        raise Conflict(
            f"agent {agent_id} has nothing to summarise: fewer than two turns are in context",
            num_messages=len(rows) + 1,
        )
    target = 0.0 if mode in ALL_MODES else (policy.target if keep_share is None else keep_share)
    client = llm(config)
    try:
        after, _ = ctx_window.ensure_fits(
            db,
            client,
            config,
            agent,
            system,
            rows,
            specs,
            ctx_window.ContextPolicy(policy.threshold, target),
            force=True,
            conversation_id=conversation_id,
        )
    except ctx_window.CannotFit as exc:  # the pre-check makes this a race with another reset
        raise Conflict(f"agent {agent_id} has nothing to summarise: {exc}") from exc
    summary = "\n".join(r["text"] or "" for r in after if _is_summary(r))
    return Compaction(len(rows) + 1, len(after) + 1, summary)
