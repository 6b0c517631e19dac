"""How `o chat` shows a streamed reply, tool calls, memory edits and an evolution."""

from __future__ import annotations

import io
from typing import Any

from letta_client.types.agents.tool_call_message import ToolCallMessage

from o.cli.chat import Transcript, describe_call, evolution_line


def _call(piece: dict[str, Any]) -> dict[str, Any]:
    return {"message_type": "tool_call_message", "tool_call": piece}


def _returned(call_id: str, status: str, result: str) -> dict[str, Any]:
    return {"message_type": "tool_return_message", "tool_call_id": call_id, "status": status, "tool_return": result}


def test_a_streamed_reply_with_a_memory_edit_and_a_tool_call() -> None:
    out = io.StringIO()
    shown = Transcript(out)
    first = {"name": "core_memory_append", "tool_call_id": "c1", "arguments": '{"label": "hu'}
    pieces = [
        ToolCallMessage.model_validate(
            {"id": "m1", "date": "2026-01-01T00:00:00Z", "message_type": "tool_call_message", "tool_call": first}
        ),
        _call({"tool_call_id": None, "arguments": 'man", "content": "Ada"}'}),
        _returned("c1", "success", "ok"),
        _call({"name": "web_search", "tool_call_id": "c2", "arguments": '{"query": "chess"}'}),
        _returned("c2", "error", "timeout"),
        {"message_type": "assistant_message", "content": "Hello "},
        {"message_type": "assistant_message", "content": [{"type": "text", "text": "Ada."}]},
    ]
    for piece in pieces:
        shown.chunk(piece)
    shown.finish()
    assert out.getvalue().splitlines() == [
        "  ✎ memory edit: core_memory_append → block human: Ada",
        '  ⚙ web_search(query="chess") (failed) → timeout',
        "agent> Hello Ada.",
    ]


def test_a_memory_replace_and_unreadable_arguments() -> None:
    line = describe_call("memory_replace", '{"label": "persona", "old_str": "a", "new_str": "b"}', "success", "")
    assert line == "  ✎ memory edit: memory_replace → block persona: b"
    assert describe_call("send_email", "{not json", "success", "sent") == '  ⚙ send_email(arguments="{not json") → sent'


def test_an_evolution_on_the_timeline() -> None:
    evo = {
        "id": "evo-1",
        "base_revision": 1,
        "candidate_revision": 2,
        "status": "promoted",
        "figures": {"shadow": {"current": {"score": 0.4}, "candidate": {"score": 0.9}}},
        "canary": {"mode": "local", "weight": 0.2},
        "decision": "promoted",
        "reason": "canary held",
    }
    assert evolution_line(evo) == (
        "evolution evo-1: 1 → 2, status promoted, shadow score 0.4 → 0.9, canary weight 0.2, "
        "decision promoted (canary held)"
    )
