"""Amazon Bedrock's Converse API through boto3: the ``bedrock`` provider behind :class:`o.llm.client.LLMClient`.

Calls are signed with the process's AWS credentials: on AWS the function's own role (the stack grants
``bedrock:InvokeModel`` / ``bedrock:InvokeModelWithResponseStream`` on foundation models and inference
profiles), locally the usual AWS chain. So there is no key, and only the operator's endpoint is ever
called (:data:`o.llm.endpoints.OPERATOR_ONLY`). ``chat`` is ``Converse``; ``stream`` is ``ConverseStream``,
whose AWS event-stream boto3 decodes into one dict per event.

Converse differs from Chat Completions much as Anthropic's Messages API does: the system prompt is a
separate list, tool results are ``toolResult`` blocks at the start of a *user* turn, turns alternate and
the first is the user's, empty text blocks are refused, and a result must answer a ``toolUse`` of the
turn before (after summarisation it may not, so an orphan result is sent as text).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from o.llm.client import ClientOptions, LLMClient, LLMError, status_error, with_retries
from o.llm.config import LLMConfig
from o.llm.endpoints import Route
from o.llm.streaming import ResponseParts, elapsed_ms, read_stream
from o.llm.types import ChatMessage, ChatRequest, ChatResponse, FinishReason, StreamEvent, ToolCall, Usage
from o.net.transport import denial_in, resolve

PROVIDER = "bedrock"

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

# Statuses of the errors Converse documents, for errors met inside a stream (which carry no HTTP status).
_STATUS: dict[str, int] = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "modelstreamerrorexception": 424,
    "modelerrorexception": 424,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}

CONVERSATION_START = "[conversation start]"

Block = dict[str, Any]
Turn = dict[str, Any]


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"raw_arguments": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _blocks(message: ChatMessage, open_calls: set[str]) -> list[Block]:
    """The content blocks of one message; ``open_calls`` holds the tool uses a result may answer."""
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        text = message.content or "(no output)"
        if call_id not in open_calls:
            return [{"text": f"[tool result for {message.name or call_id}] {text}"}]
        open_calls.discard(call_id)
        status = "error" if message.is_error else "success"
        return [{"toolResult": {"toolUseId": call_id, "content": [{"text": text}], "status": status}}]
    blocks: list[Block] = []
    if message.role == "assistant" and message.reasoning and message.reasoning_signature:
        reasoning = {"text": message.reasoning, "signature": message.reasoning_signature}
        blocks.append({"reasoningContent": {"reasoningText": reasoning}})
    if message.content:
        blocks.append({"text": message.content})
    for call in message.tool_calls if message.role == "assistant" else []:
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": _tool_input(call.arguments)}})
    return blocks


def _append(turns: list[Turn], role: str, blocks: list[Block]) -> None:
    """Add ``blocks`` to the conversation: to the last turn when it is ``role``'s (turns alternate)."""
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def to_converse(messages: list[ChatMessage]) -> tuple[list[Block], list[Turn]]:
    """The ``system`` list and the alternating ``messages`` of a Converse request."""
    system = [{"text": m.content} for m in messages if m.role == "system" and m.content]
    turns: list[Turn] = []
    open_calls: set[str] = set()
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        if role == "assistant":
            open_calls = {c.id for c in message.tool_calls}
        _append(turns, role, _blocks(message, open_calls))
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": CONVERSATION_START}]})
    for turn in turns:
        if turn["role"] == "user":
            # tool results come first in their turn
            turn["content"].sort(key=lambda b: 0 if "toolResult" in b else 1)
    return system, turns


def _tool_choice(choice: str) -> Block | None:
    if choice == "auto":
        return {"auto": {}}
    if choice == "required":
        return {"any": {}}
    if choice == "none":
        return None
    return {"tool": {"name": choice}}


def _usage(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    prompt, completion = int(raw.get("inputTokens") or 0), int(raw.get("outputTokens") or 0)
    return Usage(prompt, completion, int(raw.get("totalTokens") or 0) or prompt + completion)


class BedrockStreamReader:
    """Turns ConverseStream events (one dict each, keyed by the event's type) into O's stream events."""

    def __init__(self, model: str) -> None:
        self.parts = ResponseParts(model)
        self.stop_reason: str | None = None

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        if "contentBlockStart" in event:
            start = event["contentBlockStart"]
            use = (start.get("start") or {}).get("toolUse")
            if use:
                return [self.parts.add_tool_call(start["contentBlockIndex"], use["toolUseId"], use["name"], "")]
        elif "contentBlockDelta" in event:
            return self._delta(event["contentBlockDelta"])
        elif "messageStop" in event:
            self.stop_reason = event["messageStop"].get("stopReason") or "end_turn"
        elif "metadata" in event:
            self.parts.usage = _usage(event["metadata"].get("usage"))
        return []

    def _delta(self, block: dict[str, Any]) -> list[StreamEvent]:
        delta, index = block.get("delta") or {}, block.get("contentBlockIndex", 0)
        if "text" in delta:
            return [self.parts.add_text(delta["text"])] if delta["text"] else []
        if "toolUse" in delta:
            return [self.parts.add_tool_call(index, None, None, delta["toolUse"].get("input") or "")]
        reasoning = delta.get("reasoningContent") or {}
        if reasoning.get("signature"):
            self.parts.reasoning_signature = reasoning["signature"]
        if reasoning.get("text"):
            return [self.parts.add_reasoning(reasoning["text"])]
        return []

    def response(self, latency_ms: float) -> ChatResponse:
        if self.stop_reason is None:
            raise LLMError("bedrock stream ended without a stop reason", provider=PROVIDER, retryable=True)
        return self.parts.response(_FINISH.get(self.stop_reason, "other"), latency_ms)


def classify(exc: Exception) -> tuple[LLMError, float | None] | None:
    """The :class:`LLMError` for a botocore failure, or None for an exception that is not one."""
    denial = denial_in(exc)
    if denial is not None:
        return LLMError(f"bedrock endpoint refused: {denial.message}", provider=PROVIDER), None
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        code, message = str(error.get("Code") or ""), str(error.get("Message") or "")
        status = int((exc.response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0)
        if status < 400:  # an error event inside a stream
            status = _STATUS.get(code.lower(), 500)
        failure = status_error(PROVIDER, status, message, code)
        if code.lower() == "validationexception" and "too long" in message.lower():
            failure.context_overflow = True  # Bedrock: "Input is too long for requested model."
        return failure, None
    if isinstance(exc, ReadTimeoutError):
        return LLMError("bedrock timed out", provider=PROVIDER, retryable=True), None
    if isinstance(exc, ConnectionError):
        return LLMError(f"cannot reach bedrock: {exc}", provider=PROVIDER, retryable=True), None
    if isinstance(exc, BotoCoreError):
        return LLMError(f"bedrock error: {type(exc).__name__}", provider=PROVIDER), None
    return None


class BedrockClient:
    """One Bedrock model (a model id or an inference-profile id) behind the LLMClient protocol."""

    provider = PROVIDER

    def __init__(self, config: LLMConfig, route: Route, options: ClientOptions, *, region: str) -> None:
        self.config = config
        self.model = config.model
        self.options = options
        self._sdk = _runtime_client(route.url, region, options)

    def request(self, request: ChatRequest) -> dict[str, Any]:
        """The Converse request (public for tests and debugging)."""
        system, turns = to_converse(request.messages)
        inference: dict[str, Any] = {}
        max_tokens = request.max_tokens if request.max_tokens is not None else self.config.max_tokens
        if max_tokens is not None:
            inference["maxTokens"] = max_tokens
        temperature = request.temperature if request.temperature is not None else self.config.temperature
        inference["temperature"] = temperature
        body: dict[str, Any] = {"modelId": self.model, "messages": turns, "inferenceConfig": inference}
        if system:
            body["system"] = system
        mentions_tools = any("toolUse" in b or "toolResult" in b for t in turns for b in t["content"])
        if request.tools and (request.tool_choice != "none" or mentions_tools):
            # a conversation holding tool blocks must declare the tools even when none may be called
            specs = [
                {"toolSpec": {"name": t.name, "description": t.description or t.name, "inputSchema": {"json": s}}}
                for t in request.tools
                for s in (t.parameters,)
            ]
            tool_config: dict[str, Any] = {"tools": specs}
            choice = _tool_choice(request.tool_choice)
            if choice is not None:
                tool_config["toolChoice"] = choice
            body["toolConfig"] = tool_config
        return body

    def chat(self, request: ChatRequest) -> ChatResponse:
        body = self.request(request)
        started = time.perf_counter()
        raw = with_retries(lambda: self._sdk.converse(**body), self.options.retry, classify)
        return self._response(raw, elapsed_ms(started))

    def stream(self, request: ChatRequest) -> Iterator[StreamEvent]:
        body = self.request(request)
        started = time.perf_counter()
        opened = with_retries(lambda: self._sdk.converse_stream(**body), self.options.retry, classify)
        yield from read_stream(opened["stream"], BedrockStreamReader(self.model), self._broken, started)

    def _broken(self, exc: Exception) -> LLMError | None:
        classified = classify(exc)
        if classified is None:
            return None
        error = classified[0]
        error.retryable = True  # partial output was seen: the caller starts over
        return error

    def _response(self, raw: dict[str, Any], latency_ms: float) -> ChatResponse:
        message = (raw.get("output") or {}).get("message") or {}
        text: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[str] = []
        signature: str | None = None
        for block in message.get("content") or []:
            if "text" in block:
                text.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(ToolCall(use["toolUseId"], use["name"], json.dumps(use.get("input") or {})))
            elif "reasoningContent" in block:
                thought = block["reasoningContent"].get("reasoningText") or {}
                reasoning.append(thought.get("text") or "")
                signature = thought.get("signature") or signature
        return ChatResponse(
            content="".join(text) if text else None,
            tool_calls=calls,
            finish_reason=_FINISH.get(str(raw.get("stopReason")), "other"),
            usage=_usage(raw.get("usage")),
            model=self.model,
            latency_ms=latency_ms,
            id=(raw.get("ResponseMetadata") or {}).get("RequestId"),
            reasoning="".join(reasoning) if reasoning else None,
            reasoning_signature=signature,
        )


_clients: dict[tuple[str, str, float, float], Any] = {}
_lock = threading.Lock()


def _runtime_client(endpoint: str, region: str, options: ClientOptions) -> Any:
    """The boto3 ``bedrock-runtime`` client of one endpoint (clients are thread-safe and hold a pool)."""
    parts = urlsplit(endpoint)
    options.outbound.check_url(endpoint)
    host = parts.hostname or ""
    try:
        # boto3 connects through urllib3, not O's guarded transport: the endpoint is the operator's own,
        # so checking where its name points when the client is made is enough
        options.outbound.connectable(host, resolve(host, parts.port or (443 if parts.scheme == "https" else 80)))
    except OSError as exc:
        raise LLMError(f"cannot reach bedrock: {exc}", provider=PROVIDER, retryable=True) from exc
    key = (endpoint, region, options.timeout_s, options.connect_timeout_s)
    with _lock:
        client = _clients.get(key)
        if client is None:
            config = Config(
                connect_timeout=options.connect_timeout_s,
                read_timeout=options.timeout_s,
                retries={"total_max_attempts": 1},  # O's retry policy, shared with the other providers
            )
            client = boto3.client("bedrock-runtime", region_name=region, endpoint_url=endpoint, config=config)
            _clients[key] = client
        return client


def builder(region: str) -> Any:
    """The adapter :mod:`o.runtime` registers for the ``bedrock`` provider."""

    def build(config: LLMConfig, route: Route, options: ClientOptions) -> LLMClient:
        return BedrockClient(config, route, options, region=region)

    return build
