"""Stored messages → Letta's message union (user_message, assistant_message, tool_call_message, ...).

One stored assistant message can carry reasoning text and several tool calls; Letta shows
each as its own item, with ``send_message`` calls shown as ``assistant_message``.
"""

from __future__ import annotations

import json
from typing import Any

ASSISTANT_TOOL = "send_message"
ASSISTANT_KWARG = "message"


def _text(content: list[dict[str, Any]] | None) -> str:
    return "".join(part.get("text", "") for part in content or [] if part.get("type") == "text")


def _base(row: dict[str, Any], message_type: str) -> dict[str, Any]:
    # Items derived from one stored message share its id, so cursors stay real message ids.
    return {
        "id": row["id"],
        "date": row["created_at"].isoformat() if row.get("created_at") else None,
        "message_type": message_type,
        "otid": row.get("otid"),
        "sender_id": row.get("sender_id"),
        "step_id": row.get("step_id"),
        "run_id": row.get("run_id"),
        "name": row.get("name"),
        "seq_id": row.get("seq"),
    }


def to_letta(row: dict[str, Any], *, use_assistant_message: bool = True) -> list[dict[str, Any]]:
    role = row["role"]
    content = row.get("content") or []
    if role == "user":
        return [{**_base(row, "user_message"), "content": _text(content)}]
    if role == "system":
        return [{**_base(row, "system_message"), "content": _text(content)}]
    if role == "tool":
        returns = row.get("tool_returns") or [{}]
        # send_message's return is noise once its call shows as an assistant_message; a failure is not
        if use_assistant_message and row.get("name") == ASSISTANT_TOOL and returns[0].get("status") != "error":
            return []
        first = returns[0]
        return [
            {
                **_base(row, "tool_return_message"),
                "tool_return": first.get("func_response", _text(content)),
                "status": first.get("status", "success"),
                "tool_call_id": row.get("tool_call_id"),
                "stdout": first.get("stdout"),
                "stderr": first.get("stderr"),
            }
        ]
    if role == "approval":
        meta = row.get("metadata") or {}
        return [
            {
                **_base(row, "approval_response_message"),
                "approve": meta.get("approve"),
                "approval_request_id": meta.get("approval_request_id"),
                "reason": meta.get("reason"),
            }
        ]
    # assistant
    out: list[dict[str, Any]] = []
    reasoning = _text(content)
    if reasoning and not row.get("tool_calls") and use_assistant_message:
        # A reply without tool calls is the agent talking to the user (it ended the turn).
        return [{**_base(row, "assistant_message"), "content": reasoning}]
    if reasoning:
        out.append({**_base(row, "reasoning_message"), "reasoning": reasoning, "source": "reasoner_model"})
    pending = (row.get("metadata") or {}).get("requires_approval") or []
    for call in row.get("tool_calls") or []:
        fn = call.get("function", {})
        name, arguments = fn.get("name"), fn.get("arguments", "{}")
        if use_assistant_message and name == ASSISTANT_TOOL:
            try:
                said = json.loads(arguments).get(ASSISTANT_KWARG, "")
            except (ValueError, AttributeError):
                said = arguments
            out.append({**_base(row, "assistant_message"), "content": said})
            continue
        kind = "approval_request_message" if call.get("id") in pending else "tool_call_message"
        tool_call = {"name": name, "arguments": arguments, "tool_call_id": call.get("id")}
        out.append({**_base(row, kind), "tool_call": tool_call, "tool_calls": [tool_call]})
    return out


def to_letta_list(rows: list[dict[str, Any]], *, use_assistant_message: bool = True) -> list[dict[str, Any]]:
    return [m for row in rows for m in to_letta(row, use_assistant_message=use_assistant_message)]
