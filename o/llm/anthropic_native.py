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
from typing import Any

import anthropic
from anthropic.types import Message, RawMessageDeltaEvent, RawMessageStreamEvent
from anthropic.types import Usage as AnthropicUsage
from anthropic.types.raw_content_block_delta import RawContentBlockDelta
from anthropic.types.raw_content_block_start_event import ContentBlock

from o.llm.client import ClientOptions, LLMError
from o.llm.config import LLMConfig
from o.llm.endpoints import Route
from o.llm.provider_client import ProviderClient, SdkErrors
from o.llm.streaming import EventStream, ResponseParts
from o.llm.types import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    FinishReason,
    StreamEvent,
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


def base_url_for(endpoint: str) -> str:
    url = endpoint.rstrip("/")
    # Letta stores Anthropic's endpoint as .../v1; the SDK appends /v1/messages itself.
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        # The model produced broken JSON; the API demands an object, so keep the text visible in one.
        return {"raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


Turn = dict[str, Any]
Block = dict[str, Any]


def to_anthropic(messages: list[ChatMessage]) -> tuple[str | None, list[Turn]]:
    """Split out the system prompt and convert the rest to alternating Messages API turns."""
    system, conversation = _split_system(messages)
    turns = _alternating_turns(conversation)
    for turn in turns:
        if turn["role"] == "user":
            # tool_result blocks must precede any other content in their user turn.
            turn["content"].sort(key=lambda b: 0 if b["type"] == "tool_result" else 1)
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": CONVERSATION_START}]})
    return system, turns


def _split_system(messages: list[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    """The leading system messages joined into the system prompt, and the messages after them."""
    start = 0
    while start < len(messages) and messages[start].role == "system":
        start += 1
    parts = [m.content for m in messages[:start] if m.content]
    return ("\n\n".join(parts) if parts else None), messages[start:]


def _alternating_turns(messages: list[ChatMessage]) -> list[Turn]:
    """One turn per run of same-role messages; messages that leave no blocks are dropped."""
    turns: list[Turn] = []
    seen_tool_use: set[str] = set()
    for message in messages:
        role, blocks = _role_and_blocks(message, seen_tool_use)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _role_and_blocks(message: ChatMessage, seen_tool_use: set[str]) -> tuple[str, list[Block]]:
    if message.role == "assistant":
        return "assistant", _assistant_blocks(message, seen_tool_use)
    if message.role == "tool":
        return "user", _tool_result_blocks(message, seen_tool_use)
    # A system message after the conversation started (an alert, a summary) goes in as user text.
    return "user", _text_blocks(message)


def _text_blocks(message: ChatMessage) -> list[Block]:
    # The API rejects empty text blocks.
    if message.content and message.content.strip():
        return [{"type": "text", "text": message.content}]
    return []


def _assistant_blocks(message: ChatMessage, seen_tool_use: set[str]) -> list[Block]:
    """Signed thinking first (the API requires it back with the tool results it led to), text, tool uses.

    Records each tool use's id in ``seen_tool_use``.
    """
    blocks: list[Block] = []
    if message.reasoning_signature:
        blocks.append(
            {"type": "thinking", "thinking": message.reasoning or "", "signature": message.reasoning_signature}
        )
    blocks.extend(_text_blocks(message))
    for call in message.tool_calls:
        seen_tool_use.add(call.id)
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)})
    return blocks


def _tool_result_blocks(message: ChatMessage, seen_tool_use: set[str]) -> list[Block]:
    text = message.content or ""
    if message.tool_call_id not in seen_tool_use:
        # Its tool_use was summarised away; a tool_result without one fails the request.
        label = message.name or "tool"
        return [{"type": "text", "text": f"[{label} result] {text}".rstrip()}]
    block: Block = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    if text:
        block["content"] = text
    if message.is_error:
        block["is_error"] = True
    return [block]


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


def _usage(raw: AnthropicUsage | None) -> Usage:
    if raw is None:
        return Usage()
    # Cached prompt tokens are reported apart from input_tokens; the prompt is their sum.
    prompt = sum(
        int(getattr(raw, name, 0) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    completion = int(getattr(raw, "output_tokens", 0) or 0)
    return Usage(prompt, completion, prompt + completion, int(getattr(raw, "cache_read_input_tokens", 0) or 0))


def structured_output(response_format: dict[str, Any]) -> dict[str, Any]:
    """Letta's response_format as Anthropic's structured output (``output_config.format``): a JSON schema;
    JSON mode is any JSON object."""
    if response_format.get("type") == "json_schema":
        return {"type": "json_schema", "schema": response_format["json_schema"]["schema"]}
    return {"type": "json_schema", "schema": {"type": "object"}}


def thinking_for(config: LLMConfig, tool_choice: str, max_tokens: int) -> tuple[dict[str, Any] | None, int]:
    """The ``thinking`` parameter (None: none) and the ``max_tokens`` that leaves the answer room beside it."""
    # Thinking cannot be combined with a forced tool choice; the tool rule wins for that step.
    if not config.enable_reasoner or tool_choice not in ("auto", "none"):
        return None, max_tokens
    budget = config.max_reasoning_tokens
    if budget < MIN_THINKING_BUDGET:
        return {"type": "adaptive"}, max_tokens
    # The budget is part of max_tokens.
    return {"type": "enabled", "budget_tokens": budget}, max(max_tokens, budget + MIN_THINKING_BUDGET)


class AnthropicStreamReader:
    """Turns Messages API stream events into O's stream events.

    Tool calls are numbered in the order their ``tool_use`` blocks start (content-block
    indexes also count text and thinking blocks). Usage comes in two halves: the prompt's
    in ``message_start``, the output's (growing) in ``message_delta``.
    """

    def __init__(self, model: str) -> None:
        # An empty input streams no deltas at all; "{}" keeps the arguments valid JSON.
        self.parts = ResponseParts(model, empty_arguments="{}")
        # Content-block index -> position among this response's tool calls.
        self._tool_positions: dict[int, int] = {}
        self._prompt_tokens = 0
        self._output_tokens = 0
        self.stop_reason: str | None = None
        self.finished = False

    def feed(self, event: RawMessageStreamEvent) -> list[StreamEvent]:
        if event.type == "content_block_delta":
            return self._block_delta(event.index, event.delta)
        if event.type == "content_block_start":
            return self._block_start(event.index, event.content_block)
        if event.type == "message_start":
            self._message_start(event.message)
        elif event.type == "message_delta":
            self._message_delta(event)
        elif event.type == "message_stop":
            self.finished = True
        return []

    def _message_start(self, message: Message) -> None:
        self.parts.id = message.id
        self.parts.model = message.model or self.parts.model
        self._prompt_tokens = _usage(message.usage).prompt_tokens
        self._output_tokens = int(getattr(message.usage, "output_tokens", 0) or 0)

    def _message_delta(self, event: RawMessageDeltaEvent) -> None:
        self.stop_reason = event.delta.stop_reason or self.stop_reason
        if event.usage is not None and event.usage.output_tokens is not None:
            self._output_tokens = int(event.usage.output_tokens)

    def _block_start(self, index: int, block: ContentBlock) -> list[StreamEvent]:
        parts = self.parts
        if block.type == "tool_use":
            position = parts.tool_call_count
            self._tool_positions[index] = position
            return [parts.add_tool_call(position, block.id, block.name, "")]
        if block.type == "text" and block.text:
            return [parts.add_text(block.text)]
        if block.type == "thinking" and block.thinking:
            return [parts.add_reasoning(block.thinking)]
        return []

    def _block_delta(self, index: int, delta: RawContentBlockDelta) -> list[StreamEvent]:
        parts = self.parts
        if delta.type == "text_delta":
            return [parts.add_text(delta.text)]
        if delta.type == "thinking_delta":
            return [parts.add_reasoning(delta.thinking)]
        if delta.type == "signature_delta":
            parts.reasoning_signature = delta.signature
        elif delta.type == "input_json_delta" and index in self._tool_positions:
            return [parts.add_tool_call(self._tool_positions[index], None, None, delta.partial_json)]
        return []

    def response(self, latency_ms: float) -> ChatResponse:
        if not self.finished:
            raise LLMError("anthropic stream ended before message_stop", provider="anthropic", retryable=True)
        prompt, output = self._prompt_tokens, self._output_tokens
        self.parts.usage = Usage(prompt, output, prompt + output)
        return self.parts.response(_FINISH.get(self.stop_reason or "", "other"), latency_ms)


class AnthropicClient(ProviderClient[Message, RawMessageStreamEvent]):
    provider = "anthropic"
    errors = SdkErrors(
        anthropic.APIStatusError, anthropic.APITimeoutError, anthropic.APIConnectionError, anthropic.AnthropicError
    )

    def __init__(
        self, config: LLMConfig, api_key: str, options: ClientOptions | None = None, route: Route | None = None
    ) -> None:
        super().__init__(config, options, route)
        self._sdk = anthropic.Anthropic(
            api_key=api_key,
            base_url=base_url_for(self.route.url),
            http_client=self._http_client(),
            timeout=anthropic.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            max_retries=0,
        )

    def close(self) -> None:
        self._sdk.close()

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The keyword arguments passed to ``messages.create`` (public for tests and debugging)."""
        config = self.config
        system, turns = to_anthropic(request.messages)
        # Required by the Messages API.
        max_tokens = request.max_tokens or config.max_tokens or 4096
        thinking, max_tokens = thinking_for(config, request.tool_choice, max_tokens)
        body: dict[str, Any] = {"model": config.model, "messages": turns, "max_tokens": max_tokens}
        if thinking:
            body["thinking"] = thinking
        # The current Messages API (and SDK) has no temperature; sampling is steered by effort instead.
        output: dict[str, Any] = {}
        if config.reasoning_effort:
            output["effort"] = "low" if config.reasoning_effort == "minimal" else config.reasoning_effort
        if config.response_format:
            output["format"] = structured_output(config.response_format)
        if output:
            body["output_config"] = output
        if system:
            body["system"] = system
        if request.tools:
            body["tools"] = [to_anthropic_tool(t) for t in request.tools]
            body["tool_choice"] = self._tool_choice(request.tool_choice)
        return body

    def _tool_choice(self, choice: str) -> dict[str, Any]:
        tool_choice = to_anthropic_tool_choice(choice)
        if choice != "none" and not self.config.parallel_tool_calls:
            tool_choice["disable_parallel_tool_use"] = True
        return tool_choice

    def _send(self, body: dict[str, Any]) -> Message:
        return self._sdk.messages.create(**body)

    def _open_stream(self, body: dict[str, Any]) -> EventStream[RawMessageStreamEvent]:
        return self._sdk.messages.create(**body, stream=True)

    def _response(self, message: Message, latency_ms: float) -> ChatResponse:
        parts = ResponseParts(message.model or self.model, id=message.id, usage=_usage(message.usage))
        for block in message.content:
            if block.type == "text":
                parts.add_text(block.text)
            elif block.type == "thinking":
                parts.add_reasoning(block.thinking)
                parts.reasoning_signature = block.signature
            elif block.type == "tool_use":
                parts.add_tool_call(parts.tool_call_count, block.id, block.name, json.dumps(block.input))
        return parts.response(_FINISH.get(message.stop_reason or "", "other"), latency_ms)

    def _stream_reader(self) -> AnthropicStreamReader:
        return AnthropicStreamReader(self.model)
