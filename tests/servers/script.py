"""Scripted replies for the local provider servers.

A :class:`Script` is a queue: each chat request the server receives takes the next
entry, which is either a :class:`Reply` or a callable that computes one from the
request body (so a scripted "agent" can react to what it was sent). When the queue is
empty the script's ``default`` answers, and without one the server answers HTTP 500
"script exhausted" so a test that makes more calls than it scripted fails loudly.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ScriptedCall:
    name: str
    # A dict is sent as JSON; a str is sent verbatim (to script malformed arguments).
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    tool_calls: tuple[ScriptedCall, ...] = ()
    # Native reasoning: an Anthropic signed thinking block, or OpenAI-compatible servers' "reasoning".
    reasoning: str | None = None
    # Anything but 200 makes the server answer with the provider's error body instead.
    status: int = 200
    error: str = "scripted error"
    # OpenAI's machine-readable error code, e.g. "context_length_exceeded".
    error_code: str | None = None
    # Seconds to wait before answering (timeouts, slow providers).
    delay_s: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    # Provider-native finish/stop reason; derived from the content when None.
    finish_reason: str | None = None
    # (prompt, completion) tokens; estimated from the sizes of request and reply when None.
    usage: tuple[int, int] | None = None
    # Streaming splits text and tool arguments into pieces of this many characters.
    chunk_size: int = 8
    # Streaming only: drop the connection after this many events, mid-response.
    cut_after_events: int | None = None
    # Streaming only: seconds between two events (a model that writes its reply over time).
    token_delay_s: float = 0.0


Responder = Callable[[dict[str, Any]], Reply]


def say(text: str, **options: Any) -> Reply:
    """A plain text answer."""
    return Reply(text=text, **options)


def call(name: str, _id: str | None = None, _text: str | None = None, **arguments: Any) -> Reply:
    """One tool call (optionally with text before it): ``call("send_message", message="hi")``."""
    return Reply(text=_text, tool_calls=(ScriptedCall(name, arguments, _id),))


def calls(*scripted: ScriptedCall, text: str | None = None) -> Reply:
    """Several tool calls in one reply."""
    return Reply(text=text, tool_calls=tuple(scripted))


def fail(
    status: int, message: str = "scripted error", retry_after: float | None = None, code: str | None = None
) -> Reply:
    """An HTTP error; ``retry_after`` (seconds) is sent as ``retry-after-ms``."""
    headers: tuple[tuple[str, str], ...] = ()
    if retry_after is not None:
        headers = (("retry-after-ms", str(int(retry_after * 1000))),)
    return Reply(status=status, error=message, headers=headers, error_code=code)


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the last user message of an OpenAI- or Anthropic-shaped request body."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return ""


def echo(delay_s: float = 0.0) -> Responder:
    """A model that answers every request by sending back the last user message it was given."""

    def answer(body: dict[str, Any]) -> Reply:
        return Reply(tool_calls=(ScriptedCall("send_message", {"message": last_user_text(body)}),), delay_s=delay_s)

    return answer


class Script:
    def __init__(self, default: Reply | Responder | None = None) -> None:
        self.default = default
        self._queue: deque[Reply | Responder] = deque()
        self._lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

    def push(self, *replies: Reply | Responder) -> Script:
        with self._lock:
            self._queue.extend(replies)
        return self

    def reset(self) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            self.headers.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def last_request(self) -> dict[str, Any]:
        if not self.requests:
            raise AssertionError("the server has received no request")
        return self.requests[-1]

    def take(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            entry = self._queue.popleft() if self._queue else self.default
        if entry is None:
            # the code is what an LLMError names (it never repeats the message), so the test sees why
            return Reply(
                status=500,
                error="script exhausted: the test made more LLM calls than it scripted",
                error_code="script_exhausted",
            )
        return entry(body) if callable(entry) else entry
