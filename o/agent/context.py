"""Keeping the conversation inside the model's context window.

Before each LLM call the prompt (system text + in-context messages + tool schemas) is
counted with ``o.llm.tokens``. Past ``threshold`` of ``context_window`` the oldest
messages are summarised by the model into one summary message (role ``system``,
``metadata.kind = "summary"``); the originals are marked ``in_context = false`` and stay
in recall memory, searchable. The system prompt is never part of the stored history and
the newest user message is never evicted. The cut falls on a user turn, so a tool call
is never separated from its result.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from o.agent.transcript import text_of, to_chat
from o.ids import new_id
from o.llm import tokens
from o.llm.client import LLMClient
from o.llm.config import LLMConfig
from o.llm.types import ChatMessage, ChatRequest, ToolSpec
from o.store import messages as message_store
from o.store.db import Database

SUMMARY_KIND = "summary"
SUMMARY_SYSTEM = (
    "You summarise the earlier part of a conversation between an AI agent and a user so the agent can keep "
    "going without the full transcript. Keep facts about the user, commitments, open questions, decisions and "
    "tool results that still matter. Write at most 200 words, in the third person, as plain text."
)
SUMMARY_PREFIX = (
    "Note: prior messages have been hidden from view due to conversation memory constraints.\n"
    "The following is a summary of the previous messages:\n"
)


@dataclass(frozen=True)
class ContextPolicy:
    # Summarise when the prompt passes this share of the window ...
    threshold: float = 0.8
    # ... down to about this share, so summaries are not needed on every step.
    target: float = 0.5


class CannotFit(Exception):
    """Even with everything evictable summarised away the prompt would not fit the window."""


def _bytes(text: str | None) -> int:
    return len(text.encode()) if text else 0


def token_ceiling(config: LLMConfig, system: str, rows: list[dict[str, Any]], tools: list[ToolSpec]) -> int:
    """A cheap upper bound of :func:`prompt_tokens`: a BPE token covers at least one byte.

    Far below the threshold (the usual case) it spares tokenising the whole context every step.
    """
    total = tokens.REPLY_PRIMING + tokens.TOKENS_PER_MESSAGE + _bytes(system)
    for message in to_chat(rows):
        total += tokens.TOKENS_PER_MESSAGE + _bytes(message.content) + _bytes(message.tool_call_id)
        if message.name:
            total += tokens.TOKENS_PER_NAME + _bytes(message.name)
        for call in message.tool_calls:
            total += tokens.TOKENS_PER_TOOL_CALL + _bytes(call.name) + _bytes(call.arguments)
    if tools:
        total += tokens.TOKENS_FOR_TOOLS
        for tool in tools:
            schema = json.dumps(tool.parameters, separators=(",", ":"), sort_keys=True)
            total += tokens.TOKENS_PER_TOOL + _bytes(tool.name) + _bytes(tool.description) + _bytes(schema)
    del config  # the largest factor any provider gets keeps this a bound for all of them
    factor = max(*tokens.PROVIDER_FACTORS.values(), tokens.CL100K_FACTOR, 1.15)
    return math.ceil(total * factor) + 1


def prompt_tokens(config: LLMConfig, system: str, rows: list[dict[str, Any]], tools: list[ToolSpec]) -> int:
    messages = [ChatMessage.system(system), *to_chat(rows)]
    return tokens.count_messages(messages, tools, provider=config.model_endpoint_type, model=config.model)


def choose_cut(config: LLMConfig, system: str, rows: list[dict[str, Any]], tools: list[ToolSpec], budget: int) -> int:
    """How many of the oldest rows to evict so the rest fit ``budget`` tokens; 0 when no legal cut helps.

    Legal cuts keep a user message first; the last user message always stays.
    """
    user_positions = [i for i, r in enumerate(rows) if r["role"] == "user"]
    if len(user_positions) < 1:
        return 0
    candidates = [i for i in user_positions if i > 0]
    best = 0
    for cut in candidates:
        best = cut
        if prompt_tokens(config, system, rows[cut:], tools) <= budget:
            break
    return best


def summarize(client: LLMClient, rows: list[dict[str, Any]]) -> tuple[str, Any]:
    lines = []
    for row in rows:
        text = text_of(row.get("content"))
        if row["role"] == "assistant":
            for call in row.get("tool_calls") or []:
                text += f" [called {call['function']['name']}({call['function'].get('arguments', '')})]"
        lines.append(f"{row['role']}: {text}")
    request = ChatRequest(
        messages=[ChatMessage.system(SUMMARY_SYSTEM), ChatMessage.user("\n".join(lines))],
        tools=[],
        tool_choice="none",
    )
    response = client.chat(request)
    return (response.content or "").strip(), (response.usage, response.latency_ms)


def ensure_fits(
    db: Database,
    client: LLMClient,
    config: LLMConfig,
    agent: dict[str, Any],
    system: str,
    rows: list[dict[str, Any]],
    tools: list[ToolSpec],
    policy: ContextPolicy,
    *,
    force: bool = False,
    conversation_id: str | None = None,
) -> tuple[list[dict[str, Any]], Any]:
    """The rows to send, summarising the oldest first when the prompt is over the threshold
    (or at once with ``force``, after the provider said the prompt was too long).

    Returns (rows, None) or, after summarising, (rows, (usage, latency_ms) of the summary call).
    Raises :class:`CannotFit` when no summary can bring the prompt under the window. The summary
    belongs to the rows' conversation (``conversation_id``; None: the agent's own history).
    """
    window = config.context_window
    limit = policy.threshold * window
    if not force and (
        token_ceiling(config, system, rows, tools) <= limit or prompt_tokens(config, system, rows, tools) <= limit
    ):
        return rows, None
    cut = choose_cut(config, system, rows, tools, int(policy.target * window))
    if cut == 0:
        if force or prompt_tokens(config, system, rows, tools) > window:
            raise CannotFit(
                f"the system prompt, tools and newest message need more than the {window}-token context window"
            )
        return rows, None
    evicted = rows[:cut]
    summary, usage = summarize(client, evicted)
    with db.transaction() as conn:
        # Another worker may have summarised meanwhile; only evict rows still in context.
        if message_store.evict(conn, [r["id"] for r in evicted]) != len(evicted):
            conn.rollback()
            return message_store.in_context(conn, agent["id"], conversation_id), usage
        message_store.insert_many(
            conn,
            [
                {
                    "id": new_id("message"),
                    "organization_id": agent["organization_id"],
                    "agent_id": agent["id"],
                    "role": "system",
                    "content": [{"type": "text", "text": SUMMARY_PREFIX + summary}],
                    "text": summary,
                    "in_context": True,
                    "conversation_id": conversation_id,
                    "metadata": {"kind": SUMMARY_KIND, "summarized_ids": [r["id"] for r in evicted]},
                }
            ],
        )
        return message_store.in_context(conn, agent["id"], conversation_id), usage
