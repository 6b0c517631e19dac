"""Stored message rows covering every branch of the Letta message builders (no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

AT = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def _row(role: str, text: str | None, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"message-{role}-{len(extra)}",
        "created_at": AT,
        "role": role,
        "content": [{"type": "text", "text": text}] if text is not None else None,
        "otid": None,
        "sender_id": None,
        "step_id": "step-1",
        "run_id": "run-1",
        "name": None,
        "seq": 7,
        **extra,
    }


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


ROWS: list[dict[str, Any]] = [
    _row("user", 'héllo 🙂 "quoted"', otid="otid-1", sender_id="sender-1", name="Ada"),
    _row("user", None, created_at=None, seq=None, step_id=None, run_id=None),
    # a stored row may lack the optional columns entirely
    {"id": "message-bare", "role": "user", "content": [{"type": "text", "text": "bare"}]},
    _row(
        "user",
        "two",
        content=[{"type": "text", "text": "a"}, {"type": "image", "url": "x"}, {"type": "text", "text": "b"}],
    ),
    _row("system", "a summary", created_at=datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=2)))),
    _row(
        "tool",
        "Sent message successfully.",
        name="send_message",
        tool_call_id="call-send",
        tool_returns=[{"status": "success", "func_response": "Sent.", "stdout": None, "stderr": None}],
    ),
    _row(
        "tool",
        "boom",
        name="send_message",
        tool_call_id="call-send-err",
        tool_returns=[{"status": "error", "func_response": "boom", "stdout": ["out"], "stderr": ["err"]}],
    ),
    _row(
        "tool",
        "result",
        name="archival_memory_search",
        tool_call_id="call-search",
        tool_returns=[{"status": "success", "func_response": "found 2", "stdout": ["a\nb"], "stderr": None}],
    ),
    _row("tool", "no returns stored", name="t", tool_call_id="call-t"),
    _row("tool", "empty return", name="t", tool_call_id="call-t2", tool_returns=[{}]),
    _row("approval", None, metadata={"approve": False, "approval_request_id": "call-risky", "reason": "not now"}),
    _row("approval", None),
    _row("assistant", "Hello there!"),
    _row("assistant", "Let me think.", tool_calls=[_call("call-1", "send_message", json.dumps({"message": "Hi ✓"}))]),
    _row(
        "assistant",
        "",
        tool_calls=[
            _call("call-2", "core_memory_append", '{"label": "human", "content": "likes tea"}'),
            _call("call-3", "risky", "{}"),
            _call("call-4", "send_message", "not json"),
            _call("call-5", "send_message", "[1, 2]"),
            _call("call-6", "send_message", '{"other": 1}'),
        ],
        metadata={"requires_approval": ["call-3"]},
    ),
    _row("assistant", None, tool_calls=[{"id": "call-7", "function": {}}]),
    _row("assistant", None),
    _row("summary", "treated as an assistant row"),
]
