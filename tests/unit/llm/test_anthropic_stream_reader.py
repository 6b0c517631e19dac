from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from o.llm.anthropic_native import AnthropicStreamReader
from o.llm.client import LLMError
from o.llm.types import ReasoningDelta, StreamEvent, TextDelta, ToolCall, ToolCallDelta

_EVENT: TypeAdapter[RawMessageStreamEvent] = TypeAdapter(RawMessageStreamEvent)


def _events(*raw: dict[str, Any]) -> list[RawMessageStreamEvent]:
    return [_EVENT.validate_python(event) for event in raw]


def _start(usage: dict[str, int]) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {"type": "message_start", "message": message}


def _block(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def _delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def _stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def _end(stop_reason: str, output_tokens: int) -> list[dict[str, Any]]:
    return [
        {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": output_tokens}},
        {"type": "message_stop"},
    ]


# Recorded from a thinking model answering with text and two tool uses (one with no input).
TOOL_USE_STREAM = _events(
    _start({"input_tokens": 30, "cache_read_input_tokens": 10, "output_tokens": 1}),
    _block(0, {"type": "thinking", "thinking": "", "signature": ""}),
    _delta(0, {"type": "thinking_delta", "thinking": "Save it, "}),
    _delta(0, {"type": "thinking_delta", "thinking": "then reply."}),
    _delta(0, {"type": "signature_delta", "signature": "sig-abc"}),
    _stop(0),
    _block(1, {"type": "text", "text": ""}),
    _delta(1, {"type": "text_delta", "text": "Saving."}),
    _stop(1),
    _block(2, {"type": "tool_use", "id": "toolu_1", "name": "core_memory_append", "input": {}}),
    _delta(2, {"type": "input_json_delta", "partial_json": '{"label": "human", '}),
    _delta(2, {"type": "input_json_delta", "partial_json": '"content": "tea"}'}),
    _stop(2),
    _block(3, {"type": "tool_use", "id": "toolu_2", "name": "list_blocks", "input": {}}),
    _stop(3),
    *_end("tool_use", 42),
)


def _feed(reader: AnthropicStreamReader, events: list[RawMessageStreamEvent]) -> list[StreamEvent]:
    return [delta for event in events for delta in reader.feed(event)]


def test_thinking_text_and_tool_uses_become_deltas_and_one_response() -> None:
    reader = AnthropicStreamReader("claude-sonnet-4-5")
    events = _feed(reader, TOOL_USE_STREAM)
    assert events == [
        ReasoningDelta("Save it, "),
        ReasoningDelta("then reply."),
        TextDelta("Saving."),
        # Tool calls are numbered among tool calls, not among content blocks.
        ToolCallDelta(0, "toolu_1", "core_memory_append", ""),
        ToolCallDelta(0, None, None, '{"label": "human", '),
        ToolCallDelta(0, None, None, '"content": "tea"}'),
        ToolCallDelta(1, "toolu_2", "list_blocks", ""),
    ]
    response = reader.response(3.0)
    assert (response.reasoning, response.reasoning_signature) == ("Save it, then reply.", "sig-abc")
    assert (response.content, response.finish_reason) == ("Saving.", "tool_calls")
    assert response.tool_calls == [
        ToolCall("toolu_1", "core_memory_append", '{"label": "human", "content": "tea"}'),
        # No input streamed: "{}" keeps the arguments valid JSON.
        ToolCall("toolu_2", "list_blocks", "{}"),
    ]
    # Cached prompt tokens count towards the prompt; the output count is the last message_delta's.
    assert (response.usage.prompt_tokens, response.usage.completion_tokens, response.usage.total_tokens) == (40, 42, 82)
    assert (response.id, response.model) == ("msg_1", "claude-sonnet-4-5-20250929")


def test_text_in_a_block_start_is_not_lost() -> None:
    reader = AnthropicStreamReader("m")
    stream = _events(
        _start({"input_tokens": 5, "output_tokens": 1}),
        _block(0, {"type": "text", "text": "Hi"}),
        _delta(0, {"type": "text_delta", "text": " there"}),
        _stop(0),
        *_end("end_turn", 3),
    )
    events = _feed(reader, stream)
    assert events == [TextDelta("Hi"), TextDelta(" there")]
    response = reader.response(0.0)
    assert (response.content, response.finish_reason, response.tool_calls) == ("Hi there", "stop", [])
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 3)


def test_a_stream_without_message_stop_was_cut() -> None:
    reader = AnthropicStreamReader("m")
    _feed(reader, _events(_start({"input_tokens": 5, "output_tokens": 1}), _block(0, {"type": "text", "text": "Hi"})))
    with pytest.raises(LLMError, match="before message_stop") as info:
        reader.response(0.0)
    assert info.value.retryable and info.value.provider == "anthropic"


def test_stop_reasons_map_onto_os_finish_reasons() -> None:
    for stop_reason, finish in [("max_tokens", "length"), ("refusal", "content_filter"), ("pause_turn", "other")]:
        reader = AnthropicStreamReader("m")
        _feed(reader, _events(_start({"input_tokens": 1, "output_tokens": 1}), *_end(stop_reason, 1)))
        assert reader.response(0.0).finish_reason == finish
