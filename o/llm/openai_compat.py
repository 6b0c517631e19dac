"""OpenAI Chat Completions through the ``openai`` SDK: OpenAI itself, Groq and Ollama.

Native tool calling both ways; streaming assembles tool-call argument fragments by
their ``index`` and asks for the usage chunk (``stream_options.include_usage``).
"""

from __future__ import annotations

import re
from typing import Any, cast

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageFunctionToolCall
from openai.types.chat.chat_completion_chunk import Choice as ChunkChoice
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage

from o.llm.client import ClientOptions, LLMError
from o.llm.config import LLMConfig
from o.llm.endpoints import Route, base_url_for
from o.llm.provider_client import ProviderClient, SdkErrors
from o.llm.streaming import EventStream, ResponseParts
from o.llm.types import (
    ChatMessage,
    ChatRequest,
    ChatResponse,
    FinishReason,
    StreamEvent,
    ToolCall,
    ToolSpec,
    Usage,
)

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "length": "length",
    "content_filter": "content_filter",
}


_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def participant_name(name: str) -> str:
    """A user's display name in the form OpenAI accepts (``^[a-zA-Z0-9_-]{1,64}$``); others get a 400."""
    return _NAME_UNSAFE.sub("_", name)[:64]


# Sent by the SDK from OPENAI_ORG_ID / OPENAI_PROJECT_ID in the environment: the operator's account, so
# not sent to anyone else's endpoint.
_OPERATOR_HEADERS = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}


def sdk_client(base_url: str, api_key: str, *, operator: bool, http_client: Any, **options: Any) -> openai.OpenAI:
    """The ``openai`` SDK client for one endpoint; a tenant's endpoint gets none of the operator's headers."""
    return openai.OpenAI(
        api_key=api_key,
        base_url=base_url,
        http_client=http_client,
        default_headers=None if operator else cast(dict[str, str], _OPERATOR_HEADERS),
        **options,
    )


def to_openai_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content or ""}
    if message.role == "assistant":
        return _assistant_message(message)
    out: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.name and message.role == "user":
        out["name"] = participant_name(message.name)
    return out


def _assistant_message(message: ChatMessage) -> dict[str, Any]:
    if not message.tool_calls:
        # Content may only be null beside tool calls.
        return {"role": "assistant", "content": message.content or ""}
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
        for c in message.tool_calls
    ]
    return {"role": "assistant", "content": message.content or None, "tool_calls": calls}


def to_openai_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def to_openai_tool_choice(choice: str) -> Any:
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _reasoning(obj: Any) -> str | None:
    """Reasoning text that OpenAI-compatible servers add (Groq and Ollama: ``reasoning``; DeepSeek-style
    servers: ``reasoning_content``). OpenAI itself keeps its models' reasoning hidden."""
    for name in ("reasoning", "reasoning_content"):
        value = getattr(obj, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _usage(raw: CompletionUsage | None) -> Usage:
    if raw is None:
        return Usage()
    prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
    completion = int(getattr(raw, "completion_tokens", 0) or 0)
    total = int(getattr(raw, "total_tokens", 0) or 0) or prompt + completion
    cached = int(getattr(getattr(raw, "prompt_tokens_details", None), "cached_tokens", 0) or 0)
    return Usage(prompt, completion, total, cached)


class OpenAIStreamReader:
    """Turns ``chat.completion.chunk`` objects into O's stream events.

    Tool-call fragments are assembled by their ``index``; only the first choice is read
    (O never asks for more than one).
    """

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.parts = ResponseParts(model)
        self.finish_reason: str | None = None

    def feed(self, chunk: ChatCompletionChunk) -> list[StreamEvent]:
        parts = self.parts
        parts.id = parts.id or chunk.id
        parts.model = chunk.model or parts.model
        if chunk.usage is not None:
            parts.usage = _usage(chunk.usage)
        events: list[StreamEvent] = []
        for choice in chunk.choices:
            if choice.index == 0:
                events.extend(self._choice(choice))
        return events

    def _choice(self, choice: ChunkChoice) -> list[StreamEvent]:
        delta = choice.delta
        events: list[StreamEvent] = []
        thought = _reasoning(delta)
        if thought:
            events.append(self.parts.add_reasoning(thought))
        if delta.content:
            events.append(self.parts.add_text(delta.content))
        events.extend(self._tool_call(part) for part in delta.tool_calls or [])
        if choice.finish_reason:
            self.finish_reason = choice.finish_reason
        return events

    def _tool_call(self, part: ChoiceDeltaToolCall) -> StreamEvent:
        function = part.function
        name = function.name if function else None
        arguments = (function.arguments if function else None) or ""
        return self.parts.add_tool_call(part.index, part.id, name, arguments)

    def response(self, latency_ms: float) -> ChatResponse:
        # Every complete stream ends its choice with a finish reason; without one the connection was cut.
        if self.finish_reason is None:
            raise LLMError(
                f"{self.provider} stream ended without a finish reason", provider=self.provider, retryable=True
            )
        return self.parts.response(_FINISH.get(self.finish_reason, "other"), latency_ms)


class OpenAICompatClient(ProviderClient[ChatCompletion, ChatCompletionChunk]):
    errors = SdkErrors(openai.APIStatusError, openai.APITimeoutError, openai.APIConnectionError, openai.OpenAIError)

    def __init__(
        self, config: LLMConfig, api_key: str, options: ClientOptions | None = None, route: Route | None = None
    ) -> None:
        super().__init__(config, options, route)
        self.provider = config.model_endpoint_type
        self._sdk = sdk_client(
            base_url_for(self.route.url, config.model_endpoint_type),
            api_key,
            operator=self.route.operator,
            http_client=self._http_client(),
            timeout=openai.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            max_retries=0,
        )

    def close(self) -> None:
        self._sdk.close()

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        """The JSON body sent to ``/chat/completions`` (public for tests and debugging)."""
        config = self.config
        body: dict[str, Any] = {
            "model": config.model,
            "messages": [to_openai_message(m) for m in request.messages],
        }
        max_tokens = request.max_tokens if request.max_tokens is not None else config.max_tokens
        is_reasoning_model = config.model.startswith(("o1", "o3", "o4", "gpt-5"))
        if not is_reasoning_model:
            # Reasoning models reject any temperature but the default.
            body["temperature"] = request.temperature if request.temperature is not None else config.temperature
        if max_tokens is not None:
            # OpenAI replaced max_tokens with max_completion_tokens; Groq and Ollama still read max_tokens.
            key = "max_completion_tokens" if config.model_endpoint_type == "openai" else "max_tokens"
            body[key] = max_tokens
        if config.reasoning_effort and is_reasoning_model:
            body["reasoning_effort"] = config.reasoning_effort
        if config.frequency_penalty is not None:
            body["frequency_penalty"] = config.frequency_penalty
        if config.response_format:
            # OpenAI, Groq and Ollama's /v1 all read OpenAI's response_format
            body["response_format"] = config.response_format
        if request.tools:
            body["tools"] = [to_openai_tool(t) for t in request.tools]
            body["tool_choice"] = to_openai_tool_choice(request.tool_choice)
            if request.tool_choice != "none":
                body["parallel_tool_calls"] = config.parallel_tool_calls
        return body

    def _send(self, body: dict[str, Any]) -> ChatCompletion:
        # ``chat.completions.create`` first walks the whole prompt through the SDK's TypedDict
        # transform (about 5 ms for a 20-message prompt, most of a zero-latency call). The body
        # is already wire JSON, so post it through the SDK's documented raw route instead; the
        # SDK still does auth, headers, timeouts, errors and response parsing.
        return self._sdk.post("/chat/completions", body=body, cast_to=ChatCompletion)

    def _open_stream(self, body: dict[str, Any]) -> EventStream[ChatCompletionChunk]:
        # The same raw route as _send; the usage chunk is only sent when asked for.
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        stream_cls = openai.Stream[ChatCompletionChunk]
        return self._sdk.post(
            "/chat/completions", body=stream_body, cast_to=ChatCompletion, stream=True, stream_cls=stream_cls
        )

    def _response(self, completion: ChatCompletion, latency_ms: float) -> ChatResponse:
        if not completion.choices:
            raise LLMError(f"{self.provider} returned no choices", provider=self.provider, retryable=True)
        choice = completion.choices[0]
        message = choice.message
        tool_calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in (message.tool_calls or [])
            # Custom (free-text) tools are never offered, so a custom call cannot be meant for O.
            if isinstance(c, ChatCompletionMessageFunctionToolCall)
        ]
        return ChatResponse(
            content=message.content,
            tool_calls=tool_calls,
            finish_reason=_FINISH.get(choice.finish_reason or "", "other"),
            usage=_usage(completion.usage),
            model=completion.model or self.model,
            latency_ms=latency_ms,
            id=completion.id,
            reasoning=_reasoning(message),
        )

    def _stream_reader(self) -> OpenAIStreamReader:
        return OpenAIStreamReader(self.provider, self.model)
