from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from o.llm.client import LLMError
from o.llm.streaming import ResponseParts, read_stream
from o.llm.types import ChatResponse, Completed, ReasoningDelta, StreamEvent, TextDelta, ToolCall, ToolCallDelta


def test_parts_assemble_text_reasoning_and_tool_call_fragments() -> None:
    parts = ResponseParts("m", id="r1")
    assert parts.add_reasoning("hm") == ReasoningDelta("hm")
    assert parts.add_text("Hel") == TextDelta("Hel")
    parts.add_text("lo")
    assert parts.add_tool_call(0, "c0", "send_message", '{"mes') == ToolCallDelta(0, "c0", "send_message", '{"mes')
    # A later fragment without id or name keeps the ones already known.
    assert parts.add_tool_call(0, None, None, 'sage": "x"}') == ToolCallDelta(0, None, None, 'sage": "x"}')
    response = parts.response("tool_calls", 12.5)
    assert (response.content, response.reasoning, response.id, response.model) == ("Hello", "hm", "r1", "m")
    assert response.tool_calls == [ToolCall("c0", "send_message", '{"message": "x"}')]
    assert (response.finish_reason, response.latency_ms) == ("tool_calls", 12.5)


def test_parts_order_calls_by_index_and_fill_what_never_arrived() -> None:
    parts = ResponseParts("m", empty_arguments="{}")
    parts.add_tool_call(1, "b", "second", "")
    parts.add_tool_call(0, None, None, "")
    assert parts.tool_call_count == 2
    assert parts.tool_calls() == [ToolCall("call_0", "", "{}"), ToolCall("b", "second", "{}")]
    response = parts.response("stop", 0.0)
    assert response.content is None and response.reasoning is None and response.reasoning_signature is None


class _Stream:
    """An open stream over recorded events that can fail after some of them."""

    def __init__(self, events: list[str], fail_with: Exception | None = None) -> None:
        self.events = events
        self.fail_with = fail_with
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        yield from self.events
        if self.fail_with is not None:
            raise self.fail_with

    def close(self) -> None:
        self.closed = True


class _EchoReader:
    """Each event is a piece of text; the stream is complete when it saw "<end>"."""

    def __init__(self) -> None:
        self.parts = ResponseParts("m")
        self.ended = False

    def feed(self, event: str) -> list[StreamEvent]:
        if event == "<end>":
            self.ended = True
            return []
        return [self.parts.add_text(event)]

    def response(self, latency_ms: float) -> ChatResponse:
        if not self.ended:
            raise LLMError("cut", provider="p", retryable=True)
        return self.parts.response("stop", latency_ms)


def _never_broken(exc: Exception) -> LLMError | None:
    return None


def test_read_stream_yields_deltas_then_one_completed_and_closes() -> None:
    stream = _Stream(["a", "b", "<end>"])
    events = list(read_stream(stream, _EchoReader(), _never_broken, 0.0))
    assert events[:2] == [TextDelta("a"), TextDelta("b")]
    assert isinstance(events[2], Completed) and events[2].response.content == "ab"
    assert len(events) == 3 and stream.closed


def test_read_stream_maps_a_failure_midway_and_still_closes() -> None:
    cause = OSError("reset")
    stream = _Stream(["a"], fail_with=cause)
    seen: list[StreamEvent] = []
    with pytest.raises(LLMError, match="broke") as info:
        for event in read_stream(stream, _EchoReader(), lambda exc: LLMError("broke", provider="p"), 0.0):
            seen.append(event)
    assert seen == [TextDelta("a")] and info.value.__cause__ is cause and stream.closed


def test_read_stream_lets_foreign_errors_through_untouched() -> None:
    stream = _Stream([], fail_with=KeyError("bug"))
    with pytest.raises(KeyError):
        list(read_stream(stream, _EchoReader(), _never_broken, 0.0))
    assert stream.closed


def test_a_stream_that_stops_short_is_the_readers_call() -> None:
    stream = _Stream(["a"])
    with pytest.raises(LLMError, match="cut"):
        list(read_stream(stream, _EchoReader(), _never_broken, 0.0))
    assert stream.closed


def test_abandoning_the_iterator_closes_the_stream() -> None:
    stream = _Stream(["a", "b", "<end>"])
    events = read_stream(stream, _EchoReader(), _never_broken, 0.0)
    assert isinstance(events, Generator)
    assert next(events) == TextDelta("a")
    events.close()
    assert stream.closed
