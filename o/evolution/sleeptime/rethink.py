"""The model's part of a sleep-time pass: it reads the conversation since the last pass and rewrites
core memory, records facts and deletes redundant passages, through the agent's own built-in tools.

The tools are the ones the agent loop runs (:func:`o.tools.builtin.run_builtin`), with the specs
:data:`o.tools.builtin.BUILTINS` gives them; ``archival_memory_delete`` and ``finish_rethinking_memory``
are built-ins only this pass offers. Facts recorded here are tagged ``sleeptime``. A tool's failure
(a block over its limit, an unknown label) is told to the model as the tool's result; a pass over its
token or time budget fails.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from o.agent.prompt import render_blocks
from o.config import SleeptimeSettings
from o.errors import OError
from o.evolution.deps import EvolutionDeps
from o.evolution.sleeptime.result import PassResult
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ToolCall, ToolSpec
from o.store import agents as agent_store
from o.store import blocks as block_store
from o.store import sleeptime as sleeptime_store
from o.tools.builtin import BUILTINS, ToolContext, ToolError, run_builtin

SLEEPTIME_MARKER = "You are the sleep-time memory manager of an AI agent."
FINISH = "finish_rethinking_memory"
TOOL_NAMES = ("memory_rethink", "archival_memory_insert", "archival_memory_delete", FINISH)
TOOLS = [ToolSpec(b.name, b.description, b.parameters) for b in (BUILTINS[name] for name in TOOL_NAMES)]
FACT_TAG = "sleeptime"


def opening(blocks: Sequence[dict[str, Any]], passages: Sequence[dict[str, Any]], transcript: str) -> list[ChatMessage]:
    """The pass's first two messages: the task with core memory and an archival sample, then the conversation."""
    return [
        ChatMessage.system(
            f"{SLEEPTIME_MARKER}\nRewrite core memory blocks so they hold what matters from the conversation, "
            "merge overlapping archival passages, and record durable facts. Stay within each block's limit. "
            f"Call {FINISH} when done.\n\n"
            + render_blocks(list(blocks))
            + "\n\n<archival_sample>\n"
            + "\n".join(f"[{p['id']}] {p['text'][:300]}" for p in passages)
            + "\n</archival_sample>"
        ),
        ChatMessage.user(f"Conversation since the last pass:\n{transcript}"),
    ]


def reorganize(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    policy: SleeptimeSettings,
    result: PassResult,
    started: float,
) -> None:
    """Let the agent's model reorganize memory from the messages no pass has read; counts into ``result``."""
    with deps.db.transaction() as conn:
        agent = agent_store.get(conn, organization_id, agent_id)
        assert agent is not None
        since = sleeptime_store.through_seq(conn, agent_id)
        messages = sleeptime_store.messages_since(conn, agent_id, since, policy.message_window)
        blocks = block_store.for_agents(conn, [agent_id])[agent_id]
        passages = sleeptime_store.recent_passages(conn, agent_id, policy.archival_window)
    if not messages:
        result.through_seq = since
        return
    result.through_seq = int(messages[-1]["seq"])
    client = deps.engine.llm(LLMConfig.model_validate(agent["llm_config"]))
    transcript = "\n".join(f"{m['role']}: {m['text']}" for m in messages)
    tools = MemoryTools(deps, organization_id, agent_id, result)
    converse(client, opening(blocks, passages, transcript), tools, policy, result, started)


def converse(
    client: LLMClient,
    chat: list[ChatMessage],
    tools: MemoryTools,
    policy: SleeptimeSettings,
    result: PassResult,
    started: float,
) -> None:
    """Ask for tool calls and answer them until the model finishes, stops calling, or runs out of calls."""
    while result.tool_calls < policy.max_tool_calls:
        _check_budget(policy, result, started)
        response = client.chat(ChatRequest(messages=chat, tools=TOOLS, tool_choice="required", temperature=0.0))
        result.tokens += response.usage.total_tokens
        if not response.tool_calls:
            return
        chat.append(response.as_message())
        for call in response.tool_calls:
            result.tool_calls += 1
            text, failed = tools.run(call)
            chat.append(ChatMessage.tool(call.id, text, name=call.name, is_error=failed))
        if any(call.name == FINISH for call in response.tool_calls):
            return


def _check_budget(policy: SleeptimeSettings, result: PassResult, started: float) -> None:
    if time.monotonic() - started > policy.max_seconds:
        raise TimeoutError(f"sleep-time pass exceeded its {policy.max_seconds} s budget")
    if result.tokens >= policy.max_tokens:
        raise OError(f"sleep-time pass exceeded its {policy.max_tokens} token budget")


def _with_fact_tag(args: dict[str, Any]) -> dict[str, Any]:
    tags = args.get("tags")
    kept = [str(t) for t in tags] if isinstance(tags, list) else []
    return {**args, "tags": [*kept, FACT_TAG] if FACT_TAG not in kept else kept}


class MemoryTools:
    """The pass's tools: each call runs the built-in in its own transaction and is counted in the result."""

    def __init__(self, deps: EvolutionDeps, organization_id: str, agent_id: str, result: PassResult) -> None:
        self.deps = deps
        self.organization_id = organization_id
        self.agent_id = agent_id
        self.result = result

    def run(self, call: ToolCall) -> tuple[str, bool]:
        """The tool's answer for the model, and whether it failed."""
        if call.name not in TOOL_NAMES:
            return f"unknown tool {call.name!r}", True
        try:
            args = call.parsed_arguments()
            if call.name == "archival_memory_insert":
                args = _with_fact_tag(args)
            with self.deps.db.transaction() as conn:
                context = ToolContext(conn, self.organization_id, self.agent_id, embedders=self.deps.engine.embedders)
                text = run_builtin(context, call.name, args)
        except (ToolError, OError, ValueError) as exc:
            return f"error: {getattr(exc, 'message', None) or exc}", True
        self._count(call.name, args)
        return text, False

    def _count(self, name: str, args: dict[str, Any]) -> None:
        if name == "memory_rethink" and args["label"] not in self.result.blocks_rewritten:
            self.result.blocks_rewritten.append(str(args["label"]))
        elif name == "archival_memory_insert":
            self.result.facts_recorded += 1
        elif name == "archival_memory_delete":
            self.result.duplicates_removed += 1
