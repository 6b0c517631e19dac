"""What a run's capture, answer and exit status mean for the agent: one :class:`ToolResult`.

Pure: no process is touched here, so every outcome can be tested from bytes and numbers.
Stopping the run (deadline, output or result cap) outranks what the runner answered, and
the runner's answer outranks the exit status.
"""

from __future__ import annotations

import json
import signal
from typing import Any

from o.tools.sandbox.base import Limits, Status, ToolInvocation, ToolResult, truncate
from o.tools.sandbox.capture import Capture

# the failures the runner itself reports; anything else in its answer is not trusted
_REPORTED_FAILURES: dict[Any, Status] = {"error": "error", "limit_exceeded": "limit_exceeded", "timeout": "timeout"}


def not_started(invocation: ToolInvocation, seconds: float, message: str) -> ToolResult:
    """A call refused before any process started (its arguments cannot be sent, say)."""
    return ToolResult(
        status="error",
        func_return=f"Error executing tool {invocation.function_name}: {message}",
        message=message,
        duration_ms=seconds * 1000,
    )


def run_result(invocation: ToolInvocation, capture: Capture, returncode: int | None, seconds: float) -> ToolResult:
    limits, name = invocation.limits, invocation.function_name
    stdout = _decode(capture.stdout, limits.output_bytes)
    stderr = _decode(capture.stderr, limits.output_bytes)
    answer = _answer(capture)
    isolation = tuple(answer.get("isolation") or ())
    stopped = _stopped(capture, limits)
    if stopped is None and answer.get("status") == "success":
        text = str(answer.get("return", ""))
        return ToolResult(
            status="success",
            func_return=_cut_return(text, int(answer.get("length", len(text))), invocation.return_char_limit),
            stdout=stdout,
            stderr=stderr,
            message=f"tool {name} returned",
            duration_ms=seconds * 1000,
            isolation=isolation,
        )
    if stopped is not None:
        status, message = stopped
    elif answer.get("status") in _REPORTED_FAILURES:
        status, message = _REPORTED_FAILURES[answer["status"]], str(answer.get("message", "failed"))
        if answer.get("traceback"):
            stderr = (stderr + "\n" if stderr else "") + str(answer["traceback"])
    else:
        status, message = _from_exit(returncode, limits)
    return ToolResult(
        status=status,
        func_return=truncate(
            f"Error executing tool {invocation.function_name}: {message}", invocation.return_char_limit
        ),
        stdout=stdout,
        stderr=stderr,
        message=message,
        duration_ms=seconds * 1000,
        isolation=isolation,
    )


def _answer(capture: Capture) -> dict[str, Any]:
    """The runner's answer, or {} when it sent none, sent too much, or sent something else."""
    if not capture.result or capture.result_overflow:
        return {}
    try:
        answer = json.loads(bytes(capture.result))
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _stopped(capture: Capture, limits: Limits) -> tuple[Status, str] | None:
    """Why the server stopped the run, if it did."""
    if capture.timed_out:
        return "timeout", f"did not finish within {limits.wall_seconds:g} s and was stopped"
    if capture.output_overflow:
        return "limit_exceeded", f"printed more than {limits.output_bytes} bytes and was stopped"
    if capture.result_overflow:
        return "limit_exceeded", "returned a value too large to transfer and was stopped"
    return None


def _from_exit(returncode: int | None, limits: Limits) -> tuple[Status, str]:
    """What the runner's exit status says when it gave no answer."""
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout", f"used more than {limits.cpu_seconds} s of CPU time and was stopped"
        if sig == signal.SIGKILL:
            return "limit_exceeded", "was killed (CPU or memory limit reached)"
        return "error", f"crashed with signal {signal.Signals(sig).name}"
    return "error", f"exited with code {returncode} without returning a result"


def _decode(data: bytes | bytearray, limit: int) -> str:
    return bytes(data[:limit]).decode("utf-8", errors="replace")


def _cut_return(text: str, length: int, limit: int) -> str:
    """Cut to ``limit``, saying so; ``length`` is the real length (the runner sends at most twice the limit)."""
    if length <= limit:
        return text
    note = f"... [truncated: {length} characters, limit {limit}]"
    return text[: max(0, limit - len(note))] + note
