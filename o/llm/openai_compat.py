"""OpenAI Chat Completions through the ``openai`` SDK: OpenAI itself, Groq and Ollama.

Native tool calling both ways; streaming assembles tool-call argument fragments by
their ``index`` and asks for the usage chunk (``stream_options.include_usage``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk

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


def base_url_for(config: LLMConfig) -> str:
    url = config.endpoint.rstrip("/")
    # Letta stores Ollama's endpoint without the OpenAI-compatible /v1 suffix.
    if config.model_endpoint_type == "ollama" and not url.endswith("/v1"):
        url += "/v1"
    return url


def to_openai_message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id or "", "content": message.content or ""}
    if message.role == "assistant":
        out: dict[str, Any] = {"role": "assistant", "content": message.content or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments or "{}"},
                }
                for c in message.tool_calls
            ]
        elif out["content"] is None:
            out["content"] = ""
        return out
    out = {"role": message.role, "content": message.content or ""}
    if message.name and message.role == "user":
        out["name"] = participant_name(message.name)
    return out


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


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    prompt = int(getattr(raw, "prompt_tokens", 0) or 0)
    completion = int(getattr(raw, "completion_tokens", 0) or 0)
    total = int(getattr(raw, "total_tokens", 0) or 0) or prompt + completion
    return Usage(prompt, completion, total)


class OpenAICompatClient:
    def __init__(self, config: LLMConfig, api_key: str, options: ClientOptions | None = None) -> None:
        self.config = config
        self.provider = config.model_endpoint_type
        self.model = config.model
        self.options = options or ClientOptions()
        self._sdk = openai.OpenAI(
            api_key=api_key,
            base_url=base_url_for(config),
            timeout=openai.Timeout(self.options.timeout_s, connect=self.options.connect_timeout_s),
            max_retries=0,
        )

    def close(self) -> None:
        self._sdk.close()

    def _create(self, body: dict[str, Any], stream: bool) -> Any:
        # ``chat.completions.create`` first walks the whole prompt through the SDK's TypedDict
        # transform (about 5 ms for a 20-message prompt, most of a zero-latency call). The body
        # is already wire JSON, so post it through the SDK's documented raw route instead; the
        # SDK still does auth, headers, timeouts, errors and response parsing.
        return self._sdk.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            stream=stream,
            stream_cls=openai.Stream[ChatCompletionChunk],
        )

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
        if request.tools:
            body["tools"] = [to_openai_tool(t) for t in request.tools]
            body["tool_choice"] = to_openai_tool_choice(request.tool_choice)
            if request.tool_choice != "none":
                body["parallel_tool_calls"] = config.parallel_tool_calls
        return body

    def _classify(self, exc: Exception) -> tuple[LLMError, float | None] | None:
        if isinstance(exc, openai.APIStatusError):
            code = getattr(exc, "code", None)
            error = status_error(self.provider, exc.status_code, exc.message, code if isinstance(code, str) else None)
            return error, retry_after_seconds(exc.response.headers)
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(f"{self.provider} timed out", provider=self.provider, retryable=True), None
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"cannot reach {self.provider}: {exc}", provider=self.provider, retryable=True), None
        if isinstance(exc, openai.OpenAIError):
            return LLMError(f"{self.provider} error: {exc}", provider=self.provider), None
        return None

    def chat(self, request: ChatRequest) -> ChatResponse:
        body = self.request_body(request)
        started = time.perf_counter()
        completion = with_retries(lambda: self._create(body, False), self.options.retry, self._classify)
        latency_ms = (time.perf_counter() - started) * 1000.0
        if not completion.choices:
            raise LLMError(f"{self.provider} returned no choices", provider=self.provider, retryable=True)
        choice = completion.choices[0]
        message = choice.message
        tool_calls = [
            ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments or "")
            for c in (message.tool_calls or [])
            if getattr(c, "function", None) is not None
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

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        body = self.request_body(request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        started = time.perf_counter()
        chunks = with_retries(lambda: self._create(body, True), self.options.retry, self._classify)
        text_parts: list[str] = []
        thoughts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage = Usage()
        model = self.model
        completion_id: str | None = None
        try:
            for chunk in chunks:
                completion_id = completion_id or chunk.id
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = _usage(chunk.usage)
                for choice in chunk.choices:
                    if choice.index != 0:
                        continue
                    delta = choice.delta
                    thought = _reasoning(delta)
                    if thought:
                        thoughts.append(thought)
                        yield ReasoningDelta(thought)
                    if delta.content:
                        text_parts.append(delta.content)
                        yield TextDelta(delta.content)
                    for part in delta.tool_calls or []:
                        slot = calls.setdefault(part.index, {"id": None, "name": None, "arguments": []})
                        name = part.function.name if part.function else None
                        args = (part.function.arguments if part.function else None) or ""
                        if part.id:
                            slot["id"] = part.id
                        if name:
                            slot["name"] = name
                        slot["arguments"].append(args)
                        yield ToolCallDelta(part.index, part.id, name, args)
                    if choice.finish_reason:
                        finish = choice.finish_reason
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
            chunks.close()
        tool_calls = [
            ToolCall(
                id=slot["id"] or f"call_{index}",
                name=slot["name"] or "",
                arguments="".join(slot["arguments"]),
            )
            for index, slot in sorted(calls.items())
        ]
        if finish is None:
            raise LLMError(
                f"{self.provider} stream ended without a finish reason",
                provider=self.provider,
                retryable=True,
            )
        yield Completed(
            ChatResponse(
                content="".join(text_parts) if text_parts else None,
                tool_calls=tool_calls,
                finish_reason=_FINISH.get(finish, "other"),
                usage=usage,
                model=model,
                latency_ms=(time.perf_counter() - started) * 1000.0,
                id=completion_id,
                reasoning="".join(thoughts) if thoughts else None,
            )
        )
