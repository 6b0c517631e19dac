"""A local server speaking the Bedrock Runtime wire protocol, so the real boto3 client talks to it
(``endpoint_url``): moto does not implement Converse.

Routes: ``POST /model/{modelId}/converse`` (JSON) and ``POST /model/{modelId}/converse-stream`` (the AWS
event-stream binary encoding: each event a message with ``:event-type``, ``:content-type`` and
``:message-type`` headers, a JSON payload and CRC32 checksums; an error inside the stream is a message of
type ``exception``). Like the real service it refuses an unsigned request (403), a conversation that does
not alternate or opens with the assistant, an empty text block, a ``toolResult`` that answers no
``toolUse`` of the turn before, and tool blocks without a ``toolConfig`` (400 ValidationException), so
conversion bugs fail tests. Errors carry ``x-amzn-ErrorType`` as AWS's REST-JSON protocol does.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any
from urllib.parse import unquote

from tests.servers.base import Handler, ScriptedServer
from tests.servers.script import Reply, Script

# HTTP status -> the Bedrock error code the scripted failure is sent as
_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    # type 7: a string, its length in two bytes
    return struct.pack("!B", len(raw_name)) + raw_name + struct.pack("!BH", 7, len(raw_value)) + raw_value


def event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude (total and header lengths, their CRC), headers, payload, CRC."""
    encoded = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", zlib.crc32(prelude) & 0xFFFFFFFF)
    body = prelude + encoded + payload
    return body + struct.pack("!I", zlib.crc32(body) & 0xFFFFFFFF)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, json.dumps({"message": message}).encode())


def check_conversation(body: dict[str, Any]) -> str | None:
    """What Converse would refuse about ``body``, or None."""
    messages = body.get("messages") or []
    if not messages:
        return "messages must not be empty"
    if messages[0].get("role") != "user":
        return "A conversation must start with a user message."
    open_uses: set[str] = set()
    uses_tools = False
    for i, message in enumerate(messages):
        role = message.get("role")
        if i and role == messages[i - 1].get("role"):
            return "A conversation must alternate between user and assistant roles."
        content = message.get("content") or []
        if not content:
            return f"messages.{i}.content must not be empty"
        answered: set[str] = set()
        for block in content:
            if "text" in block and not block["text"]:
                return "The text field in the ContentBlock object is blank."
            if "toolResult" in block:
                uses_tools = True
                answered.add(block["toolResult"].get("toolUseId"))
            if "toolUse" in block:
                uses_tools = True
        if role == "user" and not answered <= open_uses:
            return "The toolResult blocks do not match the toolUse blocks of the previous turn."
        open_uses = {b["toolUse"]["toolUseId"] for b in content if "toolUse" in b} if role == "assistant" else set()
    if uses_tools and not body.get("toolConfig"):
        return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
    return None


class BedrockServer(ScriptedServer):
    def __init__(self, script: Script | None = None) -> None:
        super().__init__(script)
        self.paths: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return self.origin

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        path = handler.path.split("?")[0]
        self.paths.append(path)
        if not (handler.headers.get("authorization") or "").startswith("AWS4-HMAC-SHA256 "):
            self._error(handler, 403, "Missing Authentication Token", "AccessDeniedException")
            return
        parts = path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "model" or parts[2] not in ("converse", "converse-stream"):
            self._error(handler, 404, f"no route {path}", "UnknownOperationException")
            return
        model_id = unquote(parts[1])
        reply = self.script.take({**body, "modelId": model_id}, {k.lower(): v for k, v in handler.headers.items()})
        self.wait(reply)
        if reply.status != 200:
            self._error(handler, reply.status, reply.error, reply.error_code or _CODES.get(reply.status, "ServerError"))
            return
        problem = check_conversation(body)
        if problem:
            self._error(handler, 400, problem, "ValidationException")
            return
        if parts[2] == "converse":
            self._converse(handler, body, reply)
        else:
            self._stream(handler, body, reply)

    def _error(self, handler: Handler, status: int, message: str, code: str) -> None:
        handler.send_json(status, {"message": message}, (("x-amzn-ErrorType", f"{code}:http://internal.amazon.com/"),))

    def _blocks(self, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning:
            blocks.append({"reasoningContent": {"reasoningText": {"text": reply.reasoning, "signature": "sig-1"}}})
        if reply.text:
            blocks.append({"text": reply.text})
        for c in reply.tool_calls:
            arguments = json.loads(c.arguments) if isinstance(c.arguments, str) else c.arguments
            blocks.append(
                {"toolUse": {"toolUseId": c.id or self.next_id("tooluse_"), "name": c.name, "input": arguments}}
            )
        return blocks

    def _usage(self, body: dict[str, Any], reply: Reply) -> dict[str, int]:
        if reply.usage is not None:
            prompt, completion = reply.usage
        else:
            prompt = self.estimate_tokens([body.get("system"), body.get("messages"), body.get("toolConfig")])
            completion = self.estimate_tokens([reply.text, [c.arguments for c in reply.tool_calls]])
        return {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}

    def _stop(self, reply: Reply) -> str:
        return reply.finish_reason or ("tool_use" if reply.tool_calls else "end_turn")

    def _converse(self, handler: Handler, body: dict[str, Any], reply: Reply) -> None:
        handler.send_json(
            200,
            {
                "output": {"message": {"role": "assistant", "content": self._blocks(reply)}},
                "stopReason": self._stop(reply),
                "usage": self._usage(body, reply),
                "metrics": {"latencyMs": int(reply.delay_s * 1000)},
            },
            (("x-amzn-RequestId", self.next_id("req-")),),
        )

    def _stream(self, handler: Handler, body: dict[str, Any], reply: Reply) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "application/vnd.amazon.eventstream")
        handler.send_header("x-amzn-RequestId", self.next_id("req-"))
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        sent = 0

        def send(data: bytes) -> None:
            handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

        def emit(kind: str, payload: dict[str, Any]) -> None:
            nonlocal sent
            if reply.cut_after_events is not None and sent >= reply.cut_after_events:
                # the service reports a failure mid-stream as an exception message
                send(exception("internalServerException", "scripted failure mid-stream"))
                raise _Ended
            send(event(kind, payload))
            sent += 1

        try:
            emit("messageStart", {"role": "assistant"})
            for index, block in enumerate(self._blocks(reply)):
                self._stream_block(emit, index, block, reply.chunk_size)
            emit("messageStop", {"stopReason": self._stop(reply)})
            emit("metadata", {"usage": self._usage(body, reply), "metrics": {"latencyMs": 1}})
        except _Ended:
            pass
        handler.wfile.write(b"0\r\n\r\n")

    def _stream_block(self, emit: Any, index: int, block: dict[str, Any], size: int) -> None:
        if "toolUse" in block:
            use = block["toolUse"]
            emit(
                "contentBlockStart",
                {
                    "contentBlockIndex": index,
                    "start": {"toolUse": {"toolUseId": use["toolUseId"], "name": use["name"]}},
                },
            )
            for piece in self.pieces(json.dumps(use["input"]), size):
                emit("contentBlockDelta", {"contentBlockIndex": index, "delta": {"toolUse": {"input": piece}}})
        elif "text" in block:
            for piece in self.pieces(block["text"], size):
                emit("contentBlockDelta", {"contentBlockIndex": index, "delta": {"text": piece}})
        else:
            thought = block["reasoningContent"]["reasoningText"]
            for piece in self.pieces(thought["text"], size):
                emit("contentBlockDelta", {"contentBlockIndex": index, "delta": {"reasoningContent": {"text": piece}}})
            emit(
                "contentBlockDelta",
                {"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": thought["signature"]}}},
            )
        emit("contentBlockStop", {"contentBlockIndex": index})


class _Ended(Exception):
    """The scripted stream stops here."""
