"""What the providers' streams have in common.

Each provider has a stream reader (``OpenAIStreamReader``, ``AnthropicStreamReader``) that
turns its SDK's events into O's deltas and collects the response in a
:class:`ResponseParts`. :func:`read_stream` drives a reader over an open stream: it closes
the stream whatever happens, maps a failure partway through onto :class:`LLMError`, and
ends with the one :class:`Completed` event.

Readers are pure (no I/O), so unit tests feed them recorded event sequences.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from o.llm.client import LLMError
from o.llm.types import (
    ChatResponse,
    Completed,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

EventT = TypeVar("EventT")
EventT_contra = TypeVar("EventT_contra", contravariant=True)
EventT_co = TypeVar("EventT_co", covariant=True)


@dataclass(slots=True)
class _ToolCallParts:
    # OpenAI-compatible servers may send the id and name on any fragment (or never), so both can be missing.
    id: str | None = None
    name: str | None = None
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class ResponseParts:
    """One response as its stream has delivered it so far.

    Each ``add_*`` records a piece and returns the delta event announcing it.
    """

    model: str
    # The arguments of a call that streamed none (Anthropic sends no delta for an empty input).
    empty_arguments: str = ""
    id: str | None = None
    usage: Usage = field(default_factory=Usage)
    reasoning_signature: str | None = None
    text: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _ToolCallParts] = field(default_factory=dict)

    def add_text(self, text: str) -> TextDelta:
        self.text.append(text)
        return TextDelta(text)

    def add_reasoning(self, text: str) -> ReasoningDelta:
        self.reasoning.append(text)
        return ReasoningDelta(text)

    def add_tool_call(self, index: int, call_id: str | None, name: str | None, arguments: str) -> ToolCallDelta:
        """A fragment of the tool call at position ``index``; a fragment without id or name keeps the known ones."""
        call = self.calls.setdefault(index, _ToolCallParts())
        if call_id:
            call.id = call_id
        if name:
            call.name = name
        call.arguments.append(arguments)
        return ToolCallDelta(index, call_id, name, arguments)

    @property
    def tool_call_count(self) -> int:
        return len(self.calls)

    def tool_calls(self) -> list[ToolCall]:
        return [
            ToolCall(
                id=call.id or f"call_{index}",
                name=call.name or "",
                arguments="".join(call.arguments) or self.empty_arguments,
            )
            for index, call in sorted(self.calls.items())
        ]

    def response(self, finish_reason: FinishReason, latency_ms: float) -> ChatResponse:
        return ChatResponse(
            content="".join(self.text) if self.text else None,
            tool_calls=self.tool_calls(),
            finish_reason=finish_reason,
            usage=self.usage,
            model=self.model,
            latency_ms=latency_ms,
            id=self.id,
            reasoning="".join(self.reasoning) if self.reasoning else None,
            reasoning_signature=self.reasoning_signature,
        )


class StreamReader(Protocol[EventT_contra]):
    """Turns one provider's stream events into O's, and knows when the stream ended properly."""

    def feed(self, event: EventT_contra) -> list[StreamEvent]:
        """The deltas this event carries (often none)."""
        ...

    def response(self, latency_ms: float) -> ChatResponse:
        """The full response; raises a retryable :class:`LLMError` if the stream stopped short."""
        ...


class EventStream(Protocol[EventT_co]):
    """An open SDK stream (``openai.Stream``, ``anthropic.Stream``): iterable, and holding a connection."""

    def __iter__(self) -> Iterator[EventT_co]: ...

    def close(self) -> None: ...


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a :func:`time.perf_counter` reading)."""
    return (time.perf_counter() - started) * 1000.0


def read_stream(
    events: EventStream[EventT],
    reader: StreamReader[EventT],
    broken: Callable[[Exception], LLMError | None],
    started: float,
) -> Iterator[StreamEvent]:
    """Yield ``reader``'s deltas for ``events``, then :class:`Completed`.

    ``broken`` maps an exception raised while reading to the :class:`LLMError` to raise
    instead, or None to let it propagate untouched. The stream is closed even when the
    caller abandons the iterator, so its connection goes back to the pool.
    """
    try:
        for event in events:
            yield from reader.feed(event)
    except Exception as exc:
        error = broken(exc)
        if error is None:
            raise
        raise error from exc
    finally:
        events.close()
    yield Completed(reader.response(elapsed_ms(started)))
