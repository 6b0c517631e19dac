"""Reading a tool run's stdout, stderr and result pipe at the same time, within its limits.

Bytes are counted as they arrive, so a tool that prints without end is stopped at the
limit rather than buffered; the request is written to the runner's stdin in the same
loop, so neither side can block the other however large the request or the output.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import time
from dataclasses import dataclass, field

_READ = 65536
# how long the pipes may stay open after the runner exited: something it forked holds them
_ORPHAN_GRACE_S = 0.2


@dataclass
class Capture:
    """What a run wrote, and why reading stopped early (if it did)."""

    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    result: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    output_overflow: bool = False
    result_overflow: bool = False

    def note_overflow(self, output_bytes: int, result_cap: int) -> bool:
        """Mark and report whether the output (stdout + stderr) or the result is over its cap."""
        if len(self.stdout) + len(self.stderr) > output_bytes:
            self.output_overflow = True
        elif len(self.result) > result_cap:
            self.result_overflow = True
        return self.output_overflow or self.result_overflow


def pump(
    proc: subprocess.Popen[bytes],
    result_r: int,
    payload: bytes,
    *,
    deadline: float,
    output_bytes: int,
    result_cap: int,
) -> Capture:
    """Send ``payload`` to the runner and read its three pipes until they close, the deadline
    passes, a cap is exceeded, or the runner has exited but its pipes stay open."""
    capture = Capture()
    pipes = _Pipes(proc, result_r, payload, capture)
    try:
        exited_at: float | None = None
        while pipes.open_reads:
            now = time.monotonic()
            if now >= deadline:
                capture.timed_out = True
                return capture
            if exited_at is None and _exited(proc.pid):
                exited_at = now
            if exited_at is not None and now - exited_at > _ORPHAN_GRACE_S:
                return capture
            if pipes.transfer(timeout=min(deadline - now, 0.1), output_bytes=output_bytes, result_cap=result_cap):
                return capture
        return capture
    finally:
        pipes.close()


class _Pipes:
    """The runner's stdin (the request still to send) and its three output pipes, non-blocking."""

    def __init__(self, proc: subprocess.Popen[bytes], result_r: int, payload: bytes, capture: Capture) -> None:
        assert proc.stdin and proc.stdout and proc.stderr
        self.stdin = proc.stdin
        self.capture = capture
        self.selector = selectors.DefaultSelector()
        self.sinks: dict[int, bytearray] = {
            proc.stdout.fileno(): capture.stdout,
            proc.stderr.fileno(): capture.stderr,
            result_r: capture.result,
        }
        for fd in self.sinks:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)
        self.stdin_fd = self.stdin.fileno()
        os.set_blocking(self.stdin_fd, False)
        self.selector.register(self.stdin_fd, selectors.EVENT_WRITE)
        self.pending = memoryview(payload)
        self.open_reads = len(self.sinks)

    def transfer(self, *, timeout: float, output_bytes: int, result_cap: int) -> bool:
        """Move what is ready within ``timeout``; return whether a cap was exceeded."""
        for key, _ in self.selector.select(timeout=timeout):
            if key.fd == self.stdin_fd:
                self._write_request()
                continue
            self._read(key.fd)
            if self.capture.note_overflow(output_bytes, result_cap):
                return True
        return False

    def _write_request(self) -> None:
        try:
            self.pending = self.pending[os.write(self.stdin_fd, self.pending) :]
        except OSError:  # the runner is gone (BrokenPipeError) or closed its stdin
            self.pending = self.pending[:0]
        if not self.pending:
            self.selector.unregister(self.stdin_fd)
            self.stdin.close()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, _READ)
        except BlockingIOError:
            return
        if not chunk:
            self.selector.unregister(fd)
            self.open_reads -= 1
            return
        self.sinks[fd].extend(chunk)

    def close(self) -> None:
        self.selector.close()
        if not self.stdin.closed:
            with contextlib.suppress(OSError):
                self.stdin.close()


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (so its pid, the group id, stays ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None
