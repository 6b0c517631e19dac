from __future__ import annotations

from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

from o.llm.client import LLMError
from o.llm.openai_compat import OpenAIStreamReader
from o.llm.types import ReasoningDelta, StreamEvent, TextDelta, ToolCall, ToolCallDelta


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> ChatCompletionChunk:
    """One ``chat.completion.chunk`` as the API sends it (usage chunks have no choices).

    Built like the SDK builds what it receives: ``construct`` does not validate, so a compatible
    server's values outside OpenAI's enums (Ollama's finish reasons) arrive as they are.
    """
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    raw: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
    }
    return ChatCompletionChunk.construct(**raw, choices=choices, **extra)


def _call(index: int, arguments: str, call_id: str | None = None, name: str | None = None) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name:
        function["name"] = name
    part: dict[str, Any] = {"index": index, "function": function}
    if call_id:
        part.update(id=call_id, type="function")
    return part


# Recorded from a text-then-two-parallel-tool-calls answer, with include_usage.
TOOL_CALL_STREAM = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "Let me "}),
    _chunk({"content": "reply."}),
    _chunk({"tool_calls": [_call(0, "", "call_a", "send_message")]}),
    _chunk({"tool_calls": [_call(0, '{"message"')]}),
    _chunk({"tool_calls": [_call(0, ': "hi"}')]}),
    _chunk({"tool_calls": [_call(1, "", "call_b", "core_memory_append")]}),
    _chunk({"tool_calls": [_call(1, '{"label": "human", "content": "c"}')]}),
    _chunk({}, finish="tool_calls"),
    _chunk(usage={"prompt_tokens": 40, "completion_tokens": 11, "total_tokens": 51}),
]


def _feed(reader: OpenAIStreamReader, chunks: list[ChatCompletionChunk]) -> list[StreamEvent]:
    return [event for chunk in chunks for event in reader.feed(chunk)]


def test_text_and_tool_call_fragments_become_deltas_and_one_response() -> None:
    reader = OpenAIStreamReader("openai", "gpt-4o-mini")
    events = _feed(reader, TOOL_CALL_STREAM)
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Let me "), TextDelta("reply.")]
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0] == ToolCallDelta(0, "call_a", "send_message", "")
    assert calls[1] == ToolCallDelta(0, None, None, '{"message"')
    assert [c.index for c in calls] == [0, 0, 0, 1, 1]
    response = reader.response(7.0)
    assert response.content == "Let me reply." and response.finish_reason == "tool_calls"
    assert response.tool_calls == [
        ToolCall("call_a", "send_message", '{"message": "hi"}'),
        ToolCall("call_b", "core_memory_append", '{"label": "human", "content": "c"}'),
    ]
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (40, 11, 51)
    assert (response.id, response.model, response.latency_ms) == ("chatcmpl-1", "gpt-4o-mini-2024-07-18", 7.0)


def test_reasoning_field_of_compatible_servers_streams_apart_from_content() -> None:
    reader = OpenAIStreamReader("groq", "qwen3")
    chunks = [
        _chunk({"reasoning": "They greet; "}),
        _chunk({"reasoning_content": "greet back."}),
        _chunk({"content": "Hi!"}),
        _chunk({}, finish="stop"),
    ]
    events = _feed(reader, chunks)
    assert events == [ReasoningDelta("They greet; "), ReasoningDelta("greet back."), TextDelta("Hi!")]
    response = reader.response(1.0)
    assert (response.reasoning, response.content, response.finish_reason) == ("They greet; greet back.", "Hi!", "stop")
    assert response.usage.total_tokens == 0


def test_only_the_first_choice_is_read() -> None:
    reader = OpenAIStreamReader("openai", "m")
    raw: dict[str, Any] = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    second = {"index": 1, "delta": {"content": "other"}, "finish_reason": None}
    assert reader.feed(ChatCompletionChunk.construct(**raw, choices=[second])) == []


def test_unknown_finish_reason_is_other_and_a_missing_one_is_a_cut_stream() -> None:
    reader = OpenAIStreamReader("ollama", "llama3")
    _feed(reader, [_chunk({"content": "x"}, finish="eos")])
    assert reader.response(0.0).finish_reason == "other"
    cut = OpenAIStreamReader("ollama", "llama3")
    _feed(cut, [_chunk({"content": "x"})])
    with pytest.raises(LLMError, match="ollama stream ended without a finish reason") as info:
        cut.response(0.0)
    assert info.value.retryable
