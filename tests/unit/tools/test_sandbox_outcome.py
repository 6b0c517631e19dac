"""What a run's capture and exit status mean, decided without starting any process."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from o.tools.sandbox import Limits, ToolInvocation
from o.tools.sandbox.capture import Capture
from o.tools.sandbox.outcome import not_started, run_result
from o.tools.sandbox.sweep import empty_directory

INVOCATION = ToolInvocation("def f(): ...", "f", limits=Limits(wall_seconds=2.5, output_bytes=8), return_char_limit=80)


def captured(answer: Any = None, **flags: Any) -> Capture:
    result = json.dumps(answer).encode() if answer is not None else b""
    return Capture(stdout=bytearray(b"printed"), stderr=bytearray(), result=bytearray(result), **flags)


def test_a_successful_answer_is_the_return_with_its_isolation() -> None:
    result = run_result(INVOCATION, captured({"status": "success", "return": "3", "isolation": ["uid"]}), 0, 0.25)
    assert (result.status, result.func_return, result.stdout, result.isolation) == ("success", "3", "printed", ("uid",))
    assert result.message == "tool f returned" and result.duration_ms == 250


def test_a_long_return_is_cut_to_the_limit_with_its_real_length() -> None:
    answer = {"status": "success", "return": "x" * 160, "length": 5000}
    result = run_result(INVOCATION, captured(answer), 0, 0.1)
    assert len(result.func_return) == 80 and "5000 characters" in result.func_return


@pytest.mark.parametrize(
    ("flags", "status", "fragment"),
    [
        ({"timed_out": True}, "timeout", "within 2.5 s"),
        ({"output_overflow": True}, "limit_exceeded", "more than 8 bytes"),
        ({"result_overflow": True}, "limit_exceeded", "too large to transfer"),
    ],
)
def test_stopping_the_run_outranks_its_answer(flags: dict[str, bool], status: str, fragment: str) -> None:
    result = run_result(INVOCATION, captured({"status": "success", "return": "3"}, **flags), 0, 0.1)
    assert result.status == status and fragment in result.message
    assert result.func_return.startswith("Error executing tool f: ")


def test_a_reported_failure_carries_its_traceback_on_stderr() -> None:
    answer = {"status": "limit_exceeded", "message": "memory limit exceeded", "traceback": "Traceback ..."}
    result = run_result(INVOCATION, captured(answer), 0, 0.1)
    assert (result.status, result.message, result.stderr) == (
        "limit_exceeded",
        "memory limit exceeded",
        "Traceback ...",
    )


@pytest.mark.parametrize(
    ("answer", "returncode", "status", "fragment"),
    [
        (None, -signal.SIGXCPU, "timeout", "CPU time"),
        (None, -signal.SIGKILL, "limit_exceeded", "was killed"),
        (None, -signal.SIGSEGV, "error", "SIGSEGV"),
        (None, 2, "error", "exited with code 2"),
        # an answer the runner would never send is not trusted
        ({"status": "fine"}, 1, "error", "exited with code 1"),
        (["success"], 1, "error", "exited with code 1"),
    ],
)
def test_without_an_answer_the_exit_status_decides(answer: Any, returncode: int, status: str, fragment: str) -> None:
    result = run_result(INVOCATION, captured(answer), returncode, 0.1)
    assert result.status == status and fragment in result.message and result.isolation == ()


def test_a_call_that_never_started() -> None:
    result = not_started(INVOCATION, 0.002, "arguments are not JSON")
    assert (result.status, result.func_return) == ("error", "Error executing tool f: arguments are not JSON")
    assert result.duration_ms == pytest.approx(2)


def test_capture_notes_which_cap_was_exceeded_first() -> None:
    capture = Capture(stdout=bytearray(b"12345"), stderr=bytearray(b"678"), result=bytearray(b"r" * 10))
    assert not capture.note_overflow(output_bytes=8, result_cap=10)
    capture.stderr.extend(b"9")
    assert capture.note_overflow(output_bytes=8, result_cap=10)
    assert capture.output_overflow and not capture.result_overflow


def test_empty_directory_keeps_the_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text("x")
    (tmp_path / "g").write_text("y")
    (tmp_path / "link").symlink_to(tmp_path / "sub")
    empty_directory(tmp_path)
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []
    empty_directory(tmp_path / "missing")
