"""Provider-neutral chat types.

The step loop speaks only these; each provider client converts them to and from its
own wire format. They are plain dataclasses (not Pydantic) because they never cross the
API edge directly and are built on every step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
# "auto" | "required" | "none", or the name of one tool the model must call.
ToolChoice = str
# Normalised across providers: Anthropic's end_turn/tool_use/max_tokens map onto these.
FinishReason = Literal["stop", "tool_calls", "length", "content_filter", "other"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    # The raw JSON text the model produced; it may be invalid, so parsing is the caller's choice.
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError when the model produced bad JSON or a non-object."""
        value = json.loads(self.arguments) if self.arguments.strip() else {}
        if not isinstance(value, dict):
            raise ValueError(f"tool call arguments must be a JSON object, got {type(value).__name__}")
        return value


@dataclass(slots=True)
class ChatMessage:
    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    # Set on role="tool": which call this message answers.
    tool_call_id: str | None = None
    name: str | None = None
    # On role="tool": the tool failed; Anthropic marks such results with is_error.
    is_error: bool = False
    # On role="assistant": the model's native reasoning. Anthropic requires a signed thinking
    # block to be sent back with the tool results it led to; unsigned reasoning is not resent.
    reasoning: str | None = None
    reasoning_signature: str | None = None

    @classmethod
    def system(cls, text: str) -> ChatMessage:
        return cls(role="system", content=text)

    @classmethod
    def user(cls, text: str, name: str | None = None) -> ChatMessage:
        return cls(role="user", content=text, name=name)

    @classmethod
    def assistant(cls, text: str | None = None, tool_calls: list[ToolCall] | None = None) -> ChatMessage:
        return cls(role="assistant", content=text, tool_calls=list(tool_calls or []))

    @classmethod
    def tool(cls, tool_call_id: str, text: str, name: str | None = None, is_error: bool = False) -> ChatMessage:
        return cls(role="tool", content=text, tool_call_id=tool_call_id, name=name, is_error=is_error)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    name: str
    description: str
    # A JSON schema of type "object".
    parameters: dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    messages: list[ChatMessage]
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: ToolChoice = "auto"
    # None means: use the agent's LLMConfig value.
    temperature: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    # the part of prompt_tokens the provider read from its prompt cache (priced apart where it says so)
    cached_prompt_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
        )


@dataclass(slots=True)
class ChatResponse:
    content: str | None
    tool_calls: list[ToolCall]
    finish_reason: FinishReason
    usage: Usage
    model: str
    latency_ms: float
    # The provider's own id for the completion, kept for tracing.
    id: str | None = None
    # Native reasoning (Anthropic thinking, or the reasoning field of OpenAI-compatible servers).
    reasoning: str | None = None
    reasoning_signature: str | None = None

    def as_message(self) -> ChatMessage:
        """The assistant message to append to the conversation for the next request."""
        message = ChatMessage.assistant(self.content, self.tool_calls)
        message.reasoning = self.reasoning
        message.reasoning_signature = self.reasoning_signature
        return message


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta(TextDelta):
    """A piece of the model's native reasoning.

    It is a :class:`TextDelta` so that a consumer that only knows text shows it as the
    model's thinking (Letta's ``reasoning_message``), which is what it is; the final
    response keeps it apart from ``content``.
    """


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    # Position of the call within this response; deltas with the same index belong together.
    index: int
    # Present on the first delta of a call.
    id: str | None
    name: str | None
    arguments_delta: str


@dataclass(frozen=True, slots=True)
class Completed:
    response: ChatResponse


StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | Completed
