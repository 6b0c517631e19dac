"""Turning LLM token deltas into Letta's streamed message chunks.

With ``stream_tokens`` Letta streams ``reasoning_message`` pieces for the model's text,
``assistant_message`` pieces for the ``message`` argument of ``send_message`` (decoded
from the JSON as it arrives), and ``tool_call_message`` pieces for other tool calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

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
