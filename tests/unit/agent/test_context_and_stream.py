from __future__ import annotations

import json
from typing import Any

import pytest

from o.agent.context import choose_cut, prompt_tokens, token_ceiling
from o.api.stream import DeltaTranslator, decode_partial_string
from o.llm.config import LLMConfig
from o.llm.types import TextDelta, ToolCallDelta, ToolSpec


def _row(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"id": f"m{id(text)}", "role": role, "content": [{"type": "text", "text": text}] if text else [], **extra}


ROWS = [
    _row("user", "héllo wörld 🙂 " * 20),
    _row(
        "assistant",
        "thinking",
        tool_calls=[
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "send_message", "arguments": json.dumps({"message": "日本語のテキスト" * 10})},
            }
        ],
    ),
    _row("tool", "ok", tool_call_id="c1", name="send_message", tool_returns=[{"status": "success"}]),
    _row("user", "1234567890 " * 50),
]
TOOLS = [
    ToolSpec("send_message", "Sends a message.", {"type": "object", "properties": {"message": {"type": "string"}}})
]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq", "ollama"])
def test_ceiling_is_an_upper_bound(provider: str) -> None:
    config = LLMConfig.model_validate({"model": "m", "model_endpoint_type": provider, "context_window": 1000})
    for n in range(len(ROWS) + 1):
        exact = prompt_tokens(config, "system ✓ text", ROWS[:n], TOOLS)
        assert exact <= token_ceiling(config, "system ✓ text", ROWS[:n], TOOLS)


def test_cut_lands_on_a_user_message_and_keeps_the_last_one() -> None:
    config = LLMConfig.model_validate({"model": "gpt-4o", "model_endpoint_type": "openai", "context_window": 1000})
    cut = choose_cut(config, "sys", ROWS, TOOLS, budget=10)
    assert ROWS[cut]["role"] == "user" and cut == 3
    assert choose_cut(config, "sys", ROWS[:3], TOOLS, budget=10) == 0  # only one user message: nothing legal


@pytest.mark.parametrize(
    ("raw", "text", "closed"),
    [
        ("abc", "abc", False),
        ('ab\\"c', 'ab"c', False),
        ("ab\\", "ab", False),
        ("a\\u00e9b", "aéb", False),
        ("a\\u00", "a", False),
        ('done" , "x": 1', "done", True),
        ("line\\nnext", "line\nnext", False),
    ],
)
def test_decode_partial_string(raw: str, text: str, closed: bool) -> None:
    assert decode_partial_string(raw) == (text, closed)


def test_translator_streams_send_message_text_and_other_calls() -> None:
    out: list[dict[str, Any]] = []
    t = DeltaTranslator(out.append, {"id": "message-1"}, "send_message")
    t.feed(TextDelta("Thinking"))
    args = json.dumps({"message": 'Hi "you" é'})
    t.feed(ToolCallDelta(0, "c1", "send_message", ""))
    for i in range(0, len(args), 3):
        t.feed(ToolCallDelta(0, None, None, args[i : i + 3]))
    t.feed(ToolCallDelta(1, "c2", "core_memory_append", '{"label"'))
    t.feed(ToolCallDelta(1, None, None, ': "human"}'))
    assert out[0] == {
        "id": "message-1",
        "message_type": "reasoning_message",
        "reasoning": "Thinking",
        "source": "reasoner_model",
    }
    said = "".join(o["content"] for o in out if o["message_type"] == "assistant_message")
    assert said == 'Hi "you" é'
    calls = [o for o in out if o["message_type"] == "tool_call_message"]
    assert calls[0]["tool_call"] == {"name": "core_memory_append", "arguments": '{"label"', "tool_call_id": "c2"}
    assert "".join(c["tool_call"]["arguments"] for c in calls) == '{"label": "human"}'


def test_transcript_keeps_results_next_to_their_calls_and_drops_unanswered() -> None:
    from o.agent.transcript import to_chat

    rows = [
        _row("user", "first"),
        _row(
            "assistant",
            "",
            step_id="s1",
            tool_calls=[
                {"id": "a", "type": "function", "function": {"name": "t", "arguments": "{}"}},
                {"id": "lost", "type": "function", "function": {"name": "t", "arguments": "{}"}},
            ],
        ),
        _row("user", "another run's message"),
        _row("tool", "result a", step_id="s1", tool_call_id="a", name="t", tool_returns=[{"status": "error"}]),
        # a later step reusing the id "a" is not answered by step s1's result
        _row(
            "assistant",
            "",
            step_id="s2",
            tool_calls=[{"id": "a", "type": "function", "function": {"name": "t", "arguments": ""}}],
        ),
        _row("approval", ""),
    ]
    chat = to_chat(rows)
    assert [(m.role, m.content) for m in chat] == [
        ("user", "first"),
        ("assistant", None),
        ("tool", "result a"),
        ("user", "another run's message"),
    ]
    assert [c.id for c in chat[1].tool_calls] == ["a"]
    assert chat[2].is_error
