"""Stored messages → the provider-neutral chat messages the LLM is sent.

The stored form is the one ``o.api.schemas.messages`` reads: content parts, OpenAI-style
``tool_calls``, and ``tool_returns`` on tool messages.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from o.llm.types import ChatMessage, ToolCall


def text_of(content: list[dict[str, Any]] | None) -> str:
    return "".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def tool_calls_of(row: dict[str, Any]) -> list[ToolCall]:
    return calls_from(row.get("tool_calls"))


def calls_from(stored: list[dict[str, Any]] | None) -> list[ToolCall]:
    """Tool calls in their stored (OpenAI-style) form as the loop's ``ToolCall``s."""
    return [ToolCall(c["id"], c["function"]["name"], c["function"].get("arguments") or "{}") for c in stored or []]


def stored_tool_calls(calls: list[ToolCall]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def to_chat(rows: list[dict[str, Any]]) -> list[ChatMessage]:
    """The conversation as the LLM sees it.

    A tool call without a stored result (its run was cancelled or failed between the LLM
    reply and the tool) is dropped, since providers reject a call nobody answered.
    """
    # Keyed by step too: some providers (Ollama) reuse call ids like "call_0" from one reply to the next.
    results = {(r.get("step_id"), r["tool_call_id"]): r for r in rows if r["role"] == "tool" and r.get("tool_call_id")}
    out: list[ChatMessage] = []
    for row in rows:
        role = row["role"]
        text = text_of(row.get("content"))
        if role == "user":
            out.append(ChatMessage.user(text))
        elif role == "system":
            # A summary of evicted messages; providers only take one system prompt, so it is a user turn.
            out.append(ChatMessage.user(text))
        elif role == "assistant":
            step = row.get("step_id")
            calls = [c for c in tool_calls_of(row) if (step, c.id) in results]
            if text or calls:
                out.append(ChatMessage.assistant(text or None, calls))
            # Results follow their call directly even if another run's message landed in between.
            out.extend(_tool_message(results[(step, c.id)]) for c in calls)
        # tool rows were placed after their call; approval rows record a human decision whose
        # effect the model sees as the tool result
    return out


def _tool_message(row: dict[str, Any]) -> ChatMessage:
    returns = row.get("tool_returns") or [{}]
    status = returns[0].get("status", "success")
    return ChatMessage.tool(
        row["tool_call_id"], text_of(row.get("content")), name=row.get("name"), is_error=status != "success"
    )


def derived_id(prefix: str, *parts: object) -> str:
    """A Letta-style id that is the same on every replay of the same step."""
    return f"{prefix}-{uuid.uuid5(uuid.NAMESPACE_URL, 'o:' + '/'.join(map(str, parts)))}"


def parse_arguments(raw: str) -> dict[str, Any]:
    value = json.loads(raw) if raw.strip() else {}
    if not isinstance(value, dict):
        raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
    return value


def replies(rows: list[dict[str, Any]], assistant_tool: str = "send_message", kwarg: str = "message") -> list[str]:
    """What the agent said to the user in these messages: each ``send_message``'s text, and the text
    of a reply that called no tool (the agent ended its turn talking)."""
    said: list[str] = []
    for row in rows:
        if row["role"] != "assistant":
            continue
        text = text_of(row.get("content"))
        if text and not row.get("tool_calls"):
            said.append(text)
        for call in tool_calls_of(row):
            if call.name != assistant_tool:
                continue
            try:
                message = json.loads(call.arguments).get(kwarg, "")
            except (ValueError, AttributeError):
                message = call.arguments
            if isinstance(message, str):
                said.append(message)
    return said
