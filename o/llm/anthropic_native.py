"""Anthropic Messages through the ``anthropic`` SDK, with native tool use.

The Messages API differs from Chat Completions in ways :func:`to_anthropic` absorbs:
the system prompt is a separate parameter; tool results are ``tool_result`` blocks in
a *user* turn, listed before any text of that turn; turns must alternate, so
consecutive same-role messages are merged; the first turn must be the user's; empty
text blocks are rejected; and a tool result must answer a ``tool_use`` the
conversation still contains (after summarisation it may not, so an orphan result is
sent as plain text instead of failing the request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic

from o.llm.client import (
    ClientOptions,
    LLMError,
    is_transport_error,
    retry_after_seconds,
    status_error,
    with_retries,
)
from o.llm.config import LLMConfig
from o.llm.types import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    Completed,
    FinishReason,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "refusal": "content_filter",
}

# The smallest thinking budget the API accepts.
MIN_THINKING_BUDGET = 1024

# Sent when a conversation would otherwise open with the assistant, which the API rejects.
CONVERSATION_START = "[conversation start]"


def base_url_for(config: LLMConfig) -> str:
    url = config.endpoint.rstrip("/")
    # Letta stores Anthropic's endpoint as .../v1; the SDK appends /v1/messages itself.
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        # The model produced broken JSON; the API demands an object, so keep the text visible in one.
        return {"raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def to_anthropic(messages: list[ChatMessage]) -> tuple[str | None, list[dict[str, Any]]]:
    """Split out the system prompt and convert the rest to alternating Messages API turns."""
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    seen_tool_use: set[str] = set()
    leading = True
    for message in messages:
        if message.role == "system" and leading:
            if message.content:
                system_parts.append(message.content)
            continue
        leading = False
        role: str
        blocks: list[dict[str, Any]] = []
        if message.role == "assistant":
            role = "assistant"
            if message.reasoning_signature:
                blocks.append(
                    {"type": "thinking", "thinking": message.reasoning or "", "signature": message.reasoning_signature}
                )
            if message.content and message.content.strip():
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                seen_tool_use.add(call.id)
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": _tool_input(call.arguments),
                    }
                )
        elif message.role == "tool":
            role = "user"
            text = message.content or ""
            if message.tool_call_id in seen_tool_use:
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
                if text:
                    block["content"] = text
                if message.is_error:
                    block["is_error"] = True
                blocks.append(block)
            else:
                label = message.name or "tool"
                blocks.append({"type": "text", "text": f"[{label} result] {text}".rstrip()})
        else:
            # A system message after the conversation started (an alert, a summary) goes in as user text.
            role = "user"
            if message.content and message.content.strip():
                blocks.append({"type": "text", "text": message.content})
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must precede any other content in their user turn.
            turn["content"].sort(key=lambda b: 0 if b["type"] == "tool_result" else 1)
    if turns and turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": CONVERSATION_START}]})
    if not turns:
        turns.append({"role": "user", "content": [{"type": "text", "text": CONVERSATION_START}]})
    system = "\n\n".join(system_parts) if system_parts else None
    return system, turns


def to_anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}


def to_anthropic_tool_choice(choice: str) -> dict[str, Any]:
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    return {"type": "tool", "name": choice}


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    # Cached prompt tokens are reported apart from input_tokens; the prompt is their sum.
    prompt = sum(
        int(getattr(raw, name, 0) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    completion = int(getattr(raw, "output_tokens", 0) or 0)
    return Usage(prompt, completion, prompt + completion)


class AnthropicClient:
    provider = "anthropic"

    def __init__(self, config: LLMConfig, api_key: str, options: ClientOptions | None = None) -> None:
        self.config = config
        self.model = config.model
        self.options = options or ClientOptions()
        self._sdk = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url_for(config),
            timeout=anthropic.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            max_retries=0,
        )

    def close(self) -> None:
        self._sdk.close()

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The keyword arguments passed to ``messages.create`` (public for tests and debugging)."""
        config = self.config
        system, turns = to_anthropic(request.messages)
        body: dict[str, Any] = {
            "model": config.model,
            "messages": turns,
            # Required by the Messages API.
            "max_tokens": request.max_tokens or config.max_tokens or 4096,
        }
        # Thinking cannot be combined with a forced tool choice; the tool rule wins for that step.
        if config.enable_reasoner and request.tool_choice in ("auto", "none"):
            if config.max_reasoning_tokens >= MIN_THINKING_BUDGET:
                budget = config.max_reasoning_tokens
                body["thinking"] = {"type": "enabled", "budget_tokens": budget}
                # The budget is part of max_tokens and must leave room for the answer.
                body["max_tokens"] = max(body["max_tokens"], budget + MIN_THINKING_BUDGET)
            else:
                body["thinking"] = {"type": "adaptive"}
        # The current Messages API (and SDK) has no temperature; sampling is steered by effort instead.
        if config.reasoning_effort:
            effort = "low" if config.reasoning_effort == "minimal" else config.reasoning_effort
            body["output_config"] = {"effort": effort}
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [to_anthropic_tool(t) for t in request.tools]
            tool_choice = to_anthropic_tool_choice(request.tool_choice)
            if request.tool_choice != "none" and not config.parallel_tool_calls:
                tool_choice["disable_parallel_tool_use"] = True
            body["tool_choice"] = tool_choice
        return body

    def _classify(self, exc: Exception) -> tuple[LLMError, float | None] | None:
        if isinstance(exc, anthropic.APIStatusError):
            code = getattr(exc, "code", None)
            error = status_error(self.provider, exc.status_code, exc.message, code if isinstance(code, str) else None)
            return error, retry_after_seconds(exc.response.headers)
        if isinstance(exc, anthropic.APITimeoutError):
            return LLMError("anthropic timed out", provider=self.provider, retryable=True), None
        if isinstance(exc, anthropic.APIConnectionError):
            return LLMError(f"cannot reach anthropic: {exc}", provider=self.provider, retryable=True), None
        if isinstance(exc, anthropic.AnthropicError):
            return LLMError(f"anthropic error: {exc}", provider=self.provider), None
        return None

    def chat(self, request: ChatRequest) -> ChatResponse:
        body = self.request_body(request)
        started = time.perf_counter()
        message = with_retries(lambda: self._sdk.messages.create(**body), self.options.retry, self._classify)
        latency_ms = (time.perf_counter() - started) * 1000.0
        texts: list[str] = []
        thoughts: list[str] = []
        signature: str | None = None
        tool_calls: list[ToolCall] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "thinking":
                thoughts.append(block.thinking)
                signature = block.signature
            elif block.type == "tool_use":
                tool_calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
        return ChatResponse(
            content="".join(texts) if texts else None,
            tool_calls=tool_calls,
            finish_reason=_FINISH.get(message.stop_reason or "", "other"),
            usage=_usage(message.usage),
            model=message.model or self.model,
            latency_ms=latency_ms,
            id=message.id,
            reasoning="".join(thoughts) if thoughts else None,
            reasoning_signature=signature,
        )

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        body = self.request_body(request)
        body["stream"] = True
        started = time.perf_counter()
        events = with_retries(lambda: self._sdk.messages.create(**body), self.options.retry, self._classify)
        text_parts: list[str] = []
        thoughts: list[str] = []
        signature: str | None = None
        # Content-block index -> position among this response's tool calls.
        tool_index: dict[int, int] = {}
        calls: list[dict[str, Any]] = []
        stop_reason: str | None = None
        prompt_usage: Any = None
        output_tokens = 0
        model = self.model
        message_id: str | None = None
        finished = False
        try:
            for event in events:
                kind = event.type
                if kind == "message_start":
                    message_id = event.message.id
                    model = event.message.model or model
                    prompt_usage = event.message.usage
                    output_tokens = int(getattr(event.message.usage, "output_tokens", 0) or 0)
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        position = len(calls)
                        tool_index[event.index] = position
                        calls.append({"id": block.id, "name": block.name, "arguments": []})
                        yield ToolCallDelta(position, block.id, block.name, "")
                    elif block.type == "text" and block.text:
                        text_parts.append(block.text)
                        yield TextDelta(block.text)
                    elif block.type == "thinking" and block.thinking:
                        thoughts.append(block.thinking)
                        yield ReasoningDelta(block.thinking)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta":
                        text_parts.append(delta.text)
                        yield TextDelta(delta.text)
                    elif delta.type == "thinking_delta":
                        thoughts.append(delta.thinking)
                        yield ReasoningDelta(delta.thinking)
                    elif delta.type == "signature_delta":
                        signature = delta.signature
                    elif delta.type == "input_json_delta" and event.index in tool_index:
                        position = tool_index[event.index]
                        calls[position]["arguments"].append(delta.partial_json)
                        yield ToolCallDelta(position, None, None, delta.partial_json)
                elif kind == "message_delta":
                    stop_reason = event.delta.stop_reason or stop_reason
                    if event.usage is not None and event.usage.output_tokens is not None:
                        output_tokens = int(event.usage.output_tokens)
                elif kind == "message_stop":
                    finished = True
        except Exception as exc:
            classified = self._classify(exc)
            if classified is None:
                if not is_transport_error(exc):
                    raise
                message = f"{self.provider} stream broke off: {type(exc).__name__}: {exc}"
                classified = LLMError(message, provider=self.provider, retryable=True), None
            error, _ = classified
            error.retryable = True
            raise error from exc
        finally:
            events.close()
        if not finished:
            raise LLMError("anthropic stream ended before message_stop", provider=self.provider, retryable=True)
        prompt = _usage(prompt_usage).prompt_tokens
        tool_calls = [
            # An empty input streams no deltas at all; "{}" keeps the arguments valid JSON.
            ToolCall(id=c["id"], name=c["name"], arguments="".join(c["arguments"]) or "{}")
            for c in calls
        ]
        yield Completed(
            ChatResponse(
                content="".join(text_parts) if text_parts else None,
                tool_calls=tool_calls,
                finish_reason=_FINISH.get(stop_reason or "", "other"),
                usage=Usage(prompt, output_tokens, prompt + output_tokens),
                model=model,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                id=message_id,
                reasoning="".join(thoughts) if thoughts else None,
                reasoning_signature=signature,
            )
        )
