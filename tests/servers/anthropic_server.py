"""A local server speaking Anthropic's Messages wire protocol, scripted per test.

Routes: ``POST /v1/messages`` (JSON, or the SSE event stream: message_start,
content_block_start / content_block_delta (text_delta, input_json_delta) /
content_block_stop, message_delta with usage, message_stop) and ``GET /v1/models``.
It enforces the rules the real API enforces (a key and the version header, max_tokens,
alternating turns starting with the user, non-empty text, every tool_use answered by a
tool_result first in the next user turn, temperature within 0..1) so that conversion
bugs in O fail tests instead of failing in production.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from o.llm.config import LLMConfig
from tests.servers.base import Handler, ScriptedServer, StreamCut
from tests.servers.script import Reply, Script


def _error_type(status: int) -> str:
    return {
        400: "invalid_request_error",
        401: "authentication_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }.get(status, "api_error" if status >= 500 else "invalid_request_error")


def sign(thinking: str) -> str:
    """The signature the server gives a thinking block; a resent block must carry it unchanged."""
    return "sig-" + hashlib.sha256(thinking.encode()).hexdigest()[:32]


def _check_thinking(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking") or {}
    kind = thinking.get("type")
    messages = body.get("messages") or []
    for i, message in enumerate(messages):
        for block in _blocks(message.get("content")):
            if block.get("type") == "thinking" and block.get("signature") != sign(block.get("thinking", "")):
                return f"messages.{i}.content: Invalid `signature` in `thinking` block"
    if kind not in ("enabled", "adaptive"):
        return None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        if budget >= body["max_tokens"]:
            return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if (body.get("tool_choice") or {}).get("type") in ("any", "tool"):
        return "Thinking may not be enabled when tool_choice forces tool use."
    # The assistant turn whose tool use is being answered must open with its thinking block.
    last_assistant = next((m for m in reversed(messages) if m.get("role") == "assistant"), None)
    if last_assistant is not None:
        blocks = _blocks(last_assistant.get("content"))
        if any(b.get("type") == "tool_use" for b in blocks) and blocks[0].get("type") not in (
            "thinking",
            "redacted_thinking",
        ):
            return (
                "messages: Expected `thinking` or `redacted_thinking`, but found "
                f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message "
                "must start with a thinking block."
            )
    return None


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return list(content or [])


def check_request(body: dict[str, Any]) -> str | None:
    """What the real API would reject about ``body``, or None."""
    if not body.get("model"):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return "temperature: range: 0..1"
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        return "system: Input should be a valid string or list of text blocks"
    messages = body.get("messages") or []
    if not messages:
        return "messages: at least one message is required"
    if messages[0].get("role") != "user":
        return "messages: first message must use the 'user' role"
    pending_tool_uses: set[str] = set()
    previous_role = None
    for i, message in enumerate(messages):
        role = message.get("role")
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        if role == previous_role:
            return f"messages: roles must alternate between 'user' and 'assistant' (messages.{i})"
        previous_role = role
        blocks = _blocks(message.get("content"))
        if not blocks:
            return f"messages.{i}: all messages must have non-empty content"
        for block in blocks:
            if block.get("type") == "text" and not (block.get("text") or "").strip():
                return f"messages.{i}: text content blocks must contain non-whitespace text"
        if role == "user":
            results = [b for b in blocks if b.get("type") == "tool_result"]
            answered = {b.get("tool_use_id") for b in results}
            if pending_tool_uses - answered:
                missing = sorted(pending_tool_uses - answered)
                return f"messages.{i}: `tool_use` ids were found without `tool_result` blocks after: {missing}"
            if answered - pending_tool_uses:
                return (
                    f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{sorted(answered - pending_tool_uses)}. Each `tool_result` block must have a "
                    "corresponding `tool_use` block in the previous message."
                )
            types = [b.get("type") for b in blocks]
            if results and types[: len(results)] != ["tool_result"] * len(results):
                return f"messages.{i}: tool_result blocks must come first in the user message content"
            pending_tool_uses = set()
        else:
            pending_tool_uses = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
            for block in blocks:
                if block.get("type") == "tool_use" and not isinstance(block.get("input"), dict):
                    return f"messages.{i}: tool_use.input: Input should be a valid dictionary"
    if pending_tool_uses:
        return f"tool_use ids without tool_result: {sorted(pending_tool_uses)}"
    return _check_thinking(body)


class AnthropicServer(ScriptedServer):
    def __init__(
        self,
        script: Script | None = None,
        models: tuple[str, ...] = ("claude-sonnet-4-5", "claude-haiku-4-5"),
    ) -> None:
        super().__init__(script)
        self.models = models

    @property
    def base_url(self) -> str:
        return self.origin

    def llm_config(self, model: str = "claude-haiku-4-5", **overrides: Any) -> LLMConfig:
        """An LLMConfig pointing at this server."""
        return LLMConfig.model_validate(
            {"model": model, "model_endpoint_type": "anthropic", "model_endpoint": self.base_url, **overrides}
        )

    def handle_get(self, handler: Handler) -> None:
        if handler.path.split("?")[0].rstrip("/") == "/v1/models":
            data = [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in self.models
            ]
            handler.send_json(
                200, {"data": data, "has_more": False, "first_id": self.models[0], "last_id": self.models[-1]}
            )
            return
        super().handle_get(handler)

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        # Older SDKs send x-api-key, current ones a bearer token; the API accepts both.
        bearer = (handler.headers.get("authorization") or "").startswith("Bearer ")
        if not handler.headers.get("x-api-key") and not bearer:
            self._error(handler, Reply(status=401, error="x-api-key or authorization header is required"))
            return
        if not handler.headers.get("anthropic-version"):
            self._error(handler, Reply(status=400, error="anthropic-version: header is required"))
            return
        if handler.path.split("?")[0].rstrip("/") == "/v1/messages":
            self._messages(handler, body)
        else:
            super().handle_post(handler, body)

    def _error(self, handler: Handler, reply: Reply) -> None:
        body = {"type": "error", "error": {"type": _error_type(reply.status), "message": reply.error}}
        handler.send_json(reply.status, body, reply.headers)

    def _messages(self, handler: Handler, body: dict[str, Any]) -> None:
        reply = self.script.take(body, {k.lower(): v for k, v in handler.headers.items()})
        self.wait(reply)
        if reply.status != 200:
            self._error(handler, reply)
            return
        problem = check_request(body)
        if problem:
            self._error(handler, Reply(status=400, error=problem))
            return
        content: list[dict[str, Any]] = []
        thinking_on = (body.get("thinking") or {}).get("type") in ("enabled", "adaptive")
        if reply.reasoning and thinking_on:
            content.append({"type": "thinking", "thinking": reply.reasoning, "signature": sign(reply.reasoning)})
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for c in reply.tool_calls:
            arguments = json.loads(c.arguments) if isinstance(c.arguments, str) else c.arguments
            content.append(
                {"type": "tool_use", "id": c.id or self.next_id("toolu_"), "name": c.name, "input": arguments}
            )
        stop = reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")
        if reply.usage is not None:
            input_tokens, output_tokens = reply.usage
        else:
            input_tokens = self.estimate_tokens([body.get("system"), body.get("messages"), body.get("tools")])
            output_tokens = self.estimate_tokens(content)
        message_id = self.next_id("msg_")
        model = body["model"]
        if not body.get("stream"):
            handler.send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
                reply.headers,
            )
            return
        sent = 0

        def event(name: str, data: dict[str, Any]) -> None:
            nonlocal sent
            if reply.cut_after_events is not None and sent >= reply.cut_after_events:
                raise StreamCut
            handler.send_sse(json.dumps({"type": name, **data}), event=name)
            sent += 1

        handler.start_sse()
        event(
            "message_start",
            {
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                }
            },
        )
        event("ping", {})
        for index, block in enumerate(content):
            if block["type"] == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
                event("content_block_start", {"index": index, "content_block": start})
                for piece in self.pieces(block["thinking"], reply.chunk_size):
                    event(
                        "content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": piece}}
                    )
                signature = {"type": "signature_delta", "signature": block["signature"]}
                event("content_block_delta", {"index": index, "delta": signature})
            elif block["type"] == "text":
                event("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}})
                for piece in self.pieces(block["text"], reply.chunk_size):
                    event("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": piece}})
            else:
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                event("content_block_start", {"index": index, "content_block": start})
                raw = json.dumps(block["input"]) if block["input"] else ""
                for piece in self.pieces(raw, reply.chunk_size) if raw else []:
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    event("content_block_delta", {"index": index, "delta": delta})
            event("content_block_stop", {"index": index})
        event(
            "message_delta",
            {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": {"output_tokens": output_tokens}},
        )
        event("message_stop", {})
        handler.end_sse()
