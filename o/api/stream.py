"""What the agent loop reports live (:mod:`o.agent.events`) → Letta's streamed message chunks.

A stored message becomes its Letta messages (:func:`o.api.schemas.messages.to_letta`). With
``stream_tokens`` Letta streams ``reasoning_message`` pieces for the model's text,
``assistant_message`` pieces for the ``message`` argument of ``send_message`` (decoded from the
JSON as it arrives), and ``tool_call_message`` pieces for other tool calls; the stored assistant
message then adds only what the deltas could not show (an approval request).

Chunks are plain dicts: a stored message's are its builder's fields (the shape of a LettaMessage
model), the token pieces are fragments of a message (a tool call's name comes once, its arguments
in pieces) rather than whole Letta messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from o.agent.events import MessageStored, StepEvent, TokenDelta
from o.api.schemas.messages import to_letta
from o.llm.types import TextDelta, ToolCallDelta

_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def decode_partial_string(raw: str) -> tuple[str, bool]:
    """Decode the body of a JSON string that may be cut anywhere: (text so far, whether it closed)."""
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            return "".join(out), True
        if ch == "\\":
            if i + 1 >= len(raw):
                break
            code = raw[i + 1]
            if code == "u":
                if i + 6 > len(raw):
                    break
                out.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(code, code))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out), False


class DeltaTranslator:
    """Feeds provider deltas in, calls ``emit`` with Letta chunk dicts."""

    def __init__(
        self,
        emit: Callable[[dict[str, Any]], None],
        base: dict[str, Any],
        assistant_tool: str,
        assistant_kwarg: str = "message",
    ) -> None:
        self.emit = emit
        self.base = base
        self.assistant_tool = assistant_tool
        self.kwarg = re.compile(r'"' + re.escape(assistant_kwarg) + r'"\s*:\s*"')
        self._calls: dict[int, dict[str, Any]] = {}

    def feed(self, event: TextDelta | ToolCallDelta) -> None:
        if isinstance(event, TextDelta):
            if event.text:
                self.emit(
                    {
                        **self.base,
                        "message_type": "reasoning_message",
                        "reasoning": event.text,
                        "source": "reasoner_model",
                    }
                )
            return
        call = self._calls.setdefault(event.index, {"id": None, "name": None, "args": "", "said": 0})
        if event.id:
            call["id"] = event.id
        if event.name:
            call["name"] = event.name
        call["args"] += event.arguments_delta
        if call["name"] == self.assistant_tool:
            match = self.kwarg.search(call["args"])
            if match is None:
                return
            text, _closed = decode_partial_string(call["args"][match.end() :])
            new = text[call["said"] :]
            if new:
                call["said"] = len(text)
                self.emit({**self.base, "message_type": "assistant_message", "content": new})
            return
        if event.arguments_delta or event.name:
            tool_call = {"name": event.name, "arguments": event.arguments_delta, "tool_call_id": call["id"]}
            self.emit(
                {**self.base, "message_type": "tool_call_message", "tool_call": tool_call, "tool_calls": [tool_call]}
            )


class LettaStream:
    """Letta chunks for one run's live events, shaped by the request's options."""

    def __init__(self, request: dict[str, Any], *, stream_tokens: bool) -> None:
        self.use_assistant_message = request.get("use_assistant_message", True)
        self.wanted = request.get("include_return_message_types")
        self.assistant_tool = request.get("assistant_message_tool_name") or "send_message"
        self.assistant_kwarg = request.get("assistant_message_tool_kwarg") or "message"
        self.stream_tokens = stream_tokens
        self._translators: dict[str, DeltaTranslator] = {}
        self._out: list[dict[str, Any]] = []

    def chunks(self, event: StepEvent) -> list[dict[str, Any]]:
        if isinstance(event, TokenDelta):
            self._translator(event).feed(event.delta)
            out = list(self._out)
            self._out.clear()
            return out
        return self._stored(event)

    def _stored(self, event: MessageStored) -> list[dict[str, Any]]:
        items = to_letta(event.row, use_assistant_message=self.use_assistant_message)
        if self.stream_tokens and event.row["role"] == "assistant":
            # token deltas showed the reply as it was written; an approval request is a whole message
            items = [i for i in items if i["message_type"] == "approval_request_message"]
        return [i for i in items if not self.wanted or i["message_type"] in self.wanted]

    def _translator(self, event: TokenDelta) -> DeltaTranslator:
        translator = self._translators.get(event.message_id)
        if translator is None:
            base = {
                "id": event.message_id,
                "date": event.started_at.isoformat(),
                "otid": None,
                "sender_id": None,
                "step_id": event.step_id,
                "run_id": event.run_id,
                "name": None,
                "seq_id": None,
            }
            translator = DeltaTranslator(self._out.append, base, self.assistant_tool, self.assistant_kwarg)
            self._translators = {event.message_id: translator}  # one message streams at a time
        return translator
