"""Run a tool call in a separate, confined Python process on this machine.

The server never imports or executes tool code. It starts ``runner.py`` in a new
session with an empty environment, feeds it the request on stdin, and reads stdout,
stderr and a private result pipe at the same time (:mod:`.capture`). A wall-clock
deadline and, when running as root, a private uid per run let the server kill
everything the tool started, including processes that left its process group
(:mod:`.sweep`). What came back becomes a :class:`ToolResult` in :mod:`.outcome`.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from o.tools.sandbox.base import Limits, ToolInvocation, ToolResult
from o.tools.sandbox.capture import Capture, pump
from o.tools.sandbox.host import harden_host_process
from o.tools.sandbox.outcome import not_started, run_result
from o.tools.sandbox.sweep import stop_run

RUNNER = Path(__file__).with_name("runner.py")
# uids handed to tool runs; no account on a normal system lives this high
_UID_BASE = 1_000_000
_UID_SPAN = 1_000_000


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
        privileged = self.isolate and os.geteuid() == 0
        uid = _UID_BASE + secrets.randbelow(_UID_SPAN) if privileged else None
        workdir = Path(tempfile.mkdtemp(prefix="o-tool-", dir=self.workdir_root))
        try:
            if uid is not None:
                os.chown(workdir, uid, uid)
            try:
                payload = json.dumps(self._request(invocation, privileged, uid)).encode()
            except (TypeError, ValueError) as exc:
                return not_started(invocation, time.monotonic() - started, f"arguments are not JSON: {exc}")
            result_cap = 8 * invocation.return_char_limit + 65536
            capture, returncode = self._execute(payload, workdir, invocation.limits, uid, result_cap)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return run_result(invocation, capture, returncode, time.monotonic() - started)

    def _request(self, invocation: ToolInvocation, privileged: bool, uid: int | None) -> dict[str, Any]:
        """What the runner reads on stdin: the call, and the confinement to apply before it."""
        return {
            "source_code": invocation.source_code,
            "function_name": invocation.function_name,
            "args": invocation.args,
            "env": invocation.env,
            "limits": invocation.limits.to_dict(),
            "return_char_limit": invocation.return_char_limit,
            "isolate": {
                "netns": self.isolate and not self.allow_network,
                "mountns": privileged,
                "uid": uid,
            },
            "sys_path": _import_path(),
        }

    def _execute(
        self, payload: bytes, workdir: Path, limits: Limits, uid: int | None, result_cap: int
    ) -> tuple[Capture, int | None]:
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
        try:
            deadline = time.monotonic() + limits.wall_seconds
            capture = pump(
                proc, result_r, payload, deadline=deadline, output_bytes=limits.output_bytes, result_cap=result_cap
            )
        finally:
            os.close(result_r)
            stop_run(proc, uid)
        return capture, proc.returncode


@functools.lru_cache(maxsize=1)
def _import_path() -> list[str]:
    """Where the tool may import from: this interpreter's search path, without import hooks.

    Editable-install finders and other .pth code are not carried over, so a tool imports
    installed distributions but not packages that only a hook makes visible.
    """
    return [p for p in sys.path if p and os.path.isdir(p)]
