"""Run a tool call in a separate, confined Python process on this machine.

The server never imports or executes tool code. It starts ``runner.py`` in a new
session with an empty environment, feeds it the request on stdin, and reads stdout,
stderr and a private result pipe at the same time, counting bytes as they arrive so
a tool that prints without end is stopped at the limit rather than buffered. A
wall-clock deadline and, when running as root, a private uid per run let the server
kill everything the tool started, including processes that left its process group.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from o.tools.sandbox.base import Limits, ToolInvocation, ToolResult, truncate

RUNNER = Path(__file__).with_name("runner.py")
_READ = 65536
# uids handed to tool runs; no account on a normal system lives this high
_UID_BASE = 1_000_000
_UID_SPAN = 1_000_000


@dataclass
class _Capture:
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    result: bytearray = field(default_factory=bytearray)
    timed_out: bool = False
    output_overflow: bool = False
    result_overflow: bool = False


class LocalProcessSandbox:
    """A :class:`~o.tools.sandbox.base.Sandbox` that runs each call in a fresh child process.

    ``isolate`` asks for every confinement the machine allows (network and mount
    namespaces and a private uid need root; resource limits always apply). Which ones
    were in force is reported on each :class:`ToolResult` and by :meth:`probe`.
    """

    def __init__(
        self,
        *,
        workdir_root: Path | None = None,
        isolate: bool = True,
        allow_network: bool = False,
        python: str | None = None,
    ) -> None:
        self.workdir_root = workdir_root
        self.isolate = isolate
        # an operator's choice for tools that must call web APIs; the tool can then
        # reach whatever this host can, the database's TCP port included
        self.allow_network = allow_network
        if os.geteuid() != 0 or not isolate:
            # tools will run as this process's uid: keep them out of its memory and environment
            harden_host_process()
        self.python = python or sys.executable
        self._probed: tuple[str, ...] | None = None

    def probe(self) -> tuple[str, ...]:
        """The isolation this machine gives a tool run (cached after the first call)."""
        if self._probed is None:
            result = self.run(ToolInvocation("def probe():\n    return 'ok'\n", "probe"))
            if not result.ok:
                raise RuntimeError(f"the local sandbox cannot run a trivial tool: {result.message}")
            self._probed = result.isolation
        return self._probed

    def run(self, invocation: ToolInvocation) -> ToolResult:
        started = time.monotonic()
        limits = invocation.limits
        privileged = self.isolate and os.geteuid() == 0
        uid = _UID_BASE + secrets.randbelow(_UID_SPAN) if privileged else None
        workdir = Path(tempfile.mkdtemp(prefix="o-tool-", dir=self.workdir_root))
        try:
            if uid is not None:
                os.chown(workdir, uid, uid)
            request = {
                "source_code": invocation.source_code,
                "function_name": invocation.function_name,
                "args": invocation.args,
                "env": invocation.env,
                "limits": limits.to_dict(),
                "return_char_limit": invocation.return_char_limit,
                "isolate": {
                    "netns": self.isolate and not self.allow_network,
                    "mountns": privileged,
                    "uid": uid,
                },
                "sys_path": _import_path(),
            }
            try:
                payload = json.dumps(request).encode()
            except (TypeError, ValueError) as exc:
                return _failed(invocation, started, f"arguments are not JSON: {exc}")
            result_cap = 8 * invocation.return_char_limit + 65536
            capture, returncode = self._execute(payload, workdir, limits, uid, result_cap)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return _result(invocation, capture, returncode, time.monotonic() - started)

    def _execute(
        self, payload: bytes, workdir: Path, limits: Limits, uid: int | None, result_cap: int
    ) -> tuple[_Capture, int | None]:
        result_r, result_w = os.pipe()
        try:
            proc = subprocess.Popen(
                # -S: site's .pth processing costs more than the rest of the start-up;
                # the runner gets the resulting search path in the request instead
                [self.python, "-I", "-S", str(RUNNER), str(result_w)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                # nothing of the server's environment; the runner adds the tool's own
                # variables itself after dropping privileges
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                pass_fds=(result_w,),
                start_new_session=True,
            )
        finally:
            os.close(result_w)
        capture = _Capture()
        try:
            deadline = time.monotonic() + limits.wall_seconds
            _pump(proc, result_r, payload, capture, limits, deadline, result_cap)
        finally:
            os.close(result_r)
            _stop(proc, uid)
        return capture, proc.returncode


@functools.lru_cache(maxsize=1)
def _import_path() -> list[str]:
    """Where the tool may import from: this interpreter's search path, without import hooks.

    Editable-install finders and other .pth code are not carried over, so a tool imports
    installed distributions but not packages that only a hook makes visible.
    """
    return [p for p in sys.path if p and os.path.isdir(p)]


def _pump(
    proc: subprocess.Popen[bytes],
    result_r: int,
    payload: bytes,
    capture: _Capture,
    limits: Limits,
    deadline: float,
    result_cap: int,
) -> None:
    assert proc.stdin and proc.stdout and proc.stderr
    sel = selectors.DefaultSelector()
    streams: dict[int, bytearray] = {
        proc.stdout.fileno(): capture.stdout,
        proc.stderr.fileno(): capture.stderr,
        result_r: capture.result,
    }
    for fd in streams:
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ)
    stdin_fd = proc.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    sel.register(stdin_fd, selectors.EVENT_WRITE)
    pending = memoryview(payload)
    open_reads = len(streams)
    exited_at: float | None = None
    try:
        while open_reads:
            now = time.monotonic()
            if now >= deadline:
                capture.timed_out = True
                return
            if exited_at is None and _exited(proc.pid):
                exited_at = now
            # the runner is gone but something it forked still holds the pipes open
            if exited_at is not None and now - exited_at > 0.2:
                return
            for key, _ in sel.select(timeout=min(deadline - now, 0.1)):
                fd = key.fd
                if fd == stdin_fd:
                    try:
                        pending = pending[os.write(fd, pending) :]
                    except (BrokenPipeError, OSError):
                        pending = pending[:0]
                    if not pending:
                        sel.unregister(fd)
                        proc.stdin.close()
                    continue
                try:
                    chunk = os.read(fd, _READ)
                except BlockingIOError:
                    continue
                if not chunk:
                    sel.unregister(fd)
                    open_reads -= 1
                    continue
                streams[fd].extend(chunk)
                if len(capture.stdout) + len(capture.stderr) > limits.output_bytes:
                    capture.output_overflow = True
                    return
                if len(capture.result) > result_cap:
                    capture.result_overflow = True
                    return
    finally:
        sel.close()
        if proc.stdin and not proc.stdin.closed:
            with contextlib.suppress(OSError):
                proc.stdin.close()


def _exited(pid: int) -> bool:
    """Whether the child has exited, without reaping it (so its pid, the group id, stays ours)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _stop(proc: subprocess.Popen[bytes], uid: int | None) -> None:
    # kill the group while the leader is at most a zombie, so the group id cannot be reused
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if uid is not None:
        _kill_uid(uid)
    proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()


def _kill_uid(uid: int, *, within_s: float = 3.0) -> None:
    """Kill every process of the run's private uid, including ones that called setsid().

    Done only after two clean scans in a row: a process caught mid-fork (or mid-exit) on a busy
    machine can show up after one scan found nothing, and none may outlive the call.
    """
    deadline = time.monotonic() + within_s
    clean = 0
    while clean < 2 and time.monotonic() < deadline:
        found = False
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.stat(f"/proc/{name}").st_uid != uid or _is_zombie(name):
                    continue
                os.kill(int(name), signal.SIGKILL)
                found = True
            except (FileNotFoundError, ProcessLookupError):
                continue
        clean = 0 if found else clean + 1
        time.sleep(0.005 if found else 0.001)


def _is_zombie(pid: str) -> bool:
    # a zombie keeps its uid until reaped, but there is nothing left to kill
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rpartition(b")")[2][:3].strip() in (b"Z", b"X")


def _decode(data: bytes | bytearray, limit: int) -> str:
    return bytes(data[:limit]).decode("utf-8", errors="replace")


def _failed(invocation: ToolInvocation, started: float, message: str) -> ToolResult:
    return ToolResult(
        status="error",
        func_return=f"Error executing tool {invocation.function_name}: {message}",
        message=message,
        duration_ms=(time.monotonic() - started) * 1000,
    )


def _result(invocation: ToolInvocation, capture: _Capture, returncode: int | None, seconds: float) -> ToolResult:
    limits = invocation.limits
    name = invocation.function_name
    stdout = _decode(capture.stdout, limits.output_bytes)
    stderr = _decode(capture.stderr, limits.output_bytes)
    answer: dict[str, Any] | None = None
    if capture.result and not capture.result_overflow:
        try:
            answer = json.loads(bytes(capture.result))
        except ValueError:
            answer = None
    isolation = tuple(answer.get("isolation") or ()) if isinstance(answer, dict) else ()

    status: str
    if capture.timed_out:
        status, message = "timeout", f"did not finish within {limits.wall_seconds:g} s and was stopped"
    elif capture.output_overflow:
        status, message = "limit_exceeded", f"printed more than {limits.output_bytes} bytes and was stopped"
    elif capture.result_overflow:
        status, message = "limit_exceeded", "returned a value too large to transfer and was stopped"
    elif isinstance(answer, dict) and answer.get("status") == "success":
        text = str(answer.get("return", ""))
        length = int(answer.get("length", len(text)))
        return ToolResult(
            status="success",
            func_return=_cut_return(text, length, invocation.return_char_limit),
            stdout=stdout,
            stderr=stderr,
            message=f"tool {name} returned",
            duration_ms=seconds * 1000,
            isolation=isolation,
        )
    elif isinstance(answer, dict) and answer.get("status") in ("error", "limit_exceeded", "timeout"):
        status, message = str(answer["status"]), str(answer.get("message", "failed"))
        if answer.get("traceback"):
            stderr = (stderr + "\n" if stderr else "") + str(answer["traceback"])
    else:
        status, message = _from_exit(returncode, limits)

    return ToolResult(
        status=status,  # type: ignore[arg-type]
        func_return=truncate(f"Error executing tool {name}: {message}", invocation.return_char_limit),
        stdout=stdout,
        stderr=stderr,
        message=message,
        duration_ms=seconds * 1000,
        isolation=isolation,
    )


def _from_exit(returncode: int | None, limits: Limits) -> tuple[str, str]:
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout", f"used more than {limits.cpu_seconds} s of CPU time and was stopped"
        if sig == signal.SIGKILL:
            return "limit_exceeded", "was killed (CPU or memory limit reached)"
        return "error", f"crashed with signal {signal.Signals(sig).name}"
    return "error", f"exited with code {returncode} without returning a result"


def _cut_return(text: str, length: int, limit: int) -> str:
    if length <= limit:
        return text
    note = f"... [truncated: {length} characters, limit {limit}]"
    return text[: max(0, limit - len(note))] + note


def harden_host_process() -> None:
    """Make this process's memory and /proc/<pid>/environ unreadable to same-uid processes.

    For hosts that cannot give tools a private uid (the sandbox Lambda, a non-root
    developer machine): a tool still runs as the host's uid there, and without this it
    could read the host's environment (cloud credentials) through /proc.
    """
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0


def adopt_orphans() -> bool:
    """Become the parent of every process a tool orphans (a child subreaper).

    Only for a host that runs nothing but tool calls, one at a time (the sandbox Lambda):
    then every child still alive after a call is a leftover of that call, and
    :func:`kill_children` can remove it even if it left its session. Returns whether the
    kernel accepted.
    """
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def kill_children() -> int:
    """Kill and reap every child of this process; return how many there were."""
    me = os.getpid()
    killed = 0
    for _ in range(100):
        children = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as stat:
                    fields = stat.read().rpartition(b")")[2].split()
            except OSError:
                continue
            if len(fields) > 1 and int(fields[1]) == me:
                children.append(int(name))
        if not children:
            break
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in children:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        killed += len(children)
    return killed


def empty_directory(path: Path) -> None:
    """Remove everything inside ``path`` (not ``path`` itself), as far as permissions allow."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue
