"""A local server speaking OpenAI's wire protocol, scripted per test.

Routes: ``POST /v1/chat/completions`` (JSON, or SSE when ``stream`` is true, with the
usage chunk when ``stream_options.include_usage`` is set), ``POST /v1/embeddings``
(deterministic vectors), ``GET /v1/models``. Like the real API it rejects a request
without a bearer key (401) and a conversation whose tool messages do not answer the
preceding assistant's tool calls (400), so conversion bugs fail tests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import time
from typing import Any

from o.llm.config import LLMConfig
from tests.servers.base import Handler, ScriptedServer, StreamCut
from tests.servers.script import Reply, Script

_WORD = re.compile(r"[a-z0-9]+")
_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def embed(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector: hashed bag of words, so texts sharing words are close in cosine."""
    vector = [0.0] * dimensions
    words = _WORD.findall(text.lower()) or [""]
    for word in words:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        429: "rate_limit_error",
    }.get(status, "server_error" if status >= 500 else "invalid_request_error")


def check_conversation(messages: list[dict[str, Any]]) -> str | None:
    """What the real API would reject about ``messages``, or None."""
    if not messages:
        return "messages must be a non-empty array"
    open_calls: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("system", "developer", "user", "assistant", "tool"):
            return f"messages[{i}].role {role!r} is invalid"
        name = message.get("name")
        if name is not None and not _NAME.fullmatch(name):
            return f"Invalid 'messages[{i}].name': string does not match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in open_calls:
                return (
                    f"messages[{i}]: messages with role 'tool' must be a response to a preceding "
                    f"message with 'tool_calls' (tool_call_id {call_id!r})"
                )
            open_calls.discard(call_id)
            continue
        if open_calls:
            return (
                "An assistant message with 'tool_calls' must be followed by tool messages responding "
                f"to each 'tool_call_id'. Missing: {sorted(open_calls)}"
            )
        if role == "assistant":
            open_calls = {c["id"] for c in message.get("tool_calls") or []}
    if open_calls:
        return f"tool calls without responses: {sorted(open_calls)}"
    return None


class OpenAIServer(ScriptedServer):
    def __init__(
        self,
        script: Script | None = None,
        embedding_dim: int = 1536,
        models: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small"),
        model_fields: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(script)
        self.embedding_dim = embedding_dim
        self.models = models
        # fields a server adds to a model in GET /v1/models (vLLM: {"max_model_len": 32768})
        self.model_fields = model_fields or {}
        self.embedding_requests: list[dict[str, Any]] = []

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def llm_config(self, model: str = "gpt-4o-mini", endpoint_type: str = "openai", **overrides: Any) -> LLMConfig:
        """An LLMConfig pointing at this server."""
        return LLMConfig.model_validate(
            {"model": model, "model_endpoint_type": endpoint_type, "model_endpoint": self.base_url, **overrides}
        )

    # -- routing -------------------------------------------------------------------------------------

    def handle_get(self, handler: Handler) -> None:
        if handler.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "o-test", **self.model_fields.get(m, {})}
                for m in self.models
            ]
            handler.send_json(200, {"object": "list", "data": data})
            return
        super().handle_get(handler)

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        if not (handler.headers.get("authorization") or "").startswith("Bearer "):
            self._error(handler, Reply(status=401, error="You didn't provide an API key."))
            return
        path = handler.path.rstrip("/")
        if path == "/v1/chat/completions":
            self._chat(handler, body)
        elif path == "/v1/embeddings":
            self._embeddings(handler, body)
        else:
            super().handle_post(handler, body)

    def _error(self, handler: Handler, reply: Reply) -> None:
        body = {
            "error": {
                "message": reply.error,
                "type": _error_type(reply.status),
                "param": None,
                "code": reply.error_code,
            }
        }
        handler.send_json(reply.status, body, reply.headers)

    # -- embeddings ----------------------------------------------------------------------------------

    def _embeddings(self, handler: Handler, body: dict[str, Any]) -> None:
        self.embedding_requests.append(body)
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            self._error(handler, Reply(status=400, error="input must be a string or a non-empty array of strings"))
            return
        dimensions = int(body.get("dimensions") or self.embedding_dim)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, text in enumerate(inputs):
            vector = embed(text, dimensions)
            encoded: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(self.estimate_tokens(t) for t in inputs)
        handler.send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": body.get("model", "text-embedding-3-small"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- chat ----------------------------------------------------------------------------------------

    def _chat(self, handler: Handler, body: dict[str, Any]) -> None:
        reply = self.script.take(body, {k.lower(): v for k, v in handler.headers.items()})
        self.wait(reply)
        if reply.status != 200:
            self._error(handler, reply)
            return
        problem = check_conversation(body.get("messages") or [])
        if problem is None and not body.get("model"):
            problem = "you must provide a model parameter"
        if problem:
            self._error(handler, Reply(status=400, error=problem))
            return
        calls = [
            {
                "id": c.id or self.next_id("call_"),
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": c.arguments if isinstance(c.arguments, str) else json.dumps(c.arguments),
                },
            }
            for c in reply.tool_calls
        ]
        finish = reply.finish_reason or ("tool_calls" if calls else "stop")
        if reply.usage is not None:
            prompt_tokens, completion_tokens = reply.usage
        else:
            prompt_tokens = self.estimate_tokens([body.get("messages"), body.get("tools")])
            completion_tokens = self.estimate_tokens((reply.text or "") + json.dumps(calls) * bool(calls))
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        completion_id = self.next_id("chatcmpl-")
        model = body["model"]
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
            if reply.reasoning:
                message["reasoning"] = reply.reasoning
            if calls:
                message["tool_calls"] = calls
            handler.send_json(
                200,
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                    "usage": usage,
                },
                reply.headers,
            )
            return
        self._stream(handler, body, reply, calls, finish, usage, completion_id, model)

    def _stream(
        self,
        handler: Handler,
        body: dict[str, Any],
        reply: Reply,
        calls: list[dict[str, Any]],
        finish: str,
        usage: dict[str, int],
        completion_id: str,
        model: str,
    ) -> None:
        created = int(time.time())
        sent = 0

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            nonlocal sent
            if reply.cut_after_events is not None and sent >= reply.cut_after_events:
                raise StreamCut
            payload = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}],
            }
            if sent and reply.token_delay_s:
                time.sleep(reply.token_delay_s)
            handler.send_sse(json.dumps(payload))
            sent += 1

        handler.start_sse()
        chunk({"role": "assistant", "content": ""})
        if reply.reasoning:
            for piece in self.pieces(reply.reasoning, reply.chunk_size):
                chunk({"reasoning": piece})
        if reply.text:
            for piece in self.pieces(reply.text, reply.chunk_size):
                chunk({"content": piece})
        for index, c in enumerate(calls):
            function = c["function"]
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": c["id"],
                            "type": "function",
                            "function": {"name": function["name"], "arguments": ""},
                        }
                    ]
                }
            )
            for piece in self.pieces(function["arguments"], reply.chunk_size):
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            handler.send_sse(
                json.dumps(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "choices": [],
                        "usage": usage,
                    }
                )
            )
        handler.send_sse("[DONE]")
        handler.end_sse()
