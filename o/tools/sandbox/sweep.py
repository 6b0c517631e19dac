"""Removing what a tool run leaves behind: its processes (even those that left its session)
and, on a host that runs nothing else, its files."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


def stop_run(proc: subprocess.Popen[bytes], uid: int | None) -> None:
    """Kill the runner's process group and, with a private uid, every process of that uid; reap the runner."""
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
        found = _kill_live_processes_of(uid)
        clean = 0 if found else clean + 1
        time.sleep(0.005 if found else 0.001)


def _kill_live_processes_of(uid: int) -> bool:
    """One scan of /proc: SIGKILL each live process of ``uid``; return whether there was any."""
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
    return found


def _is_zombie(pid: str) -> bool:
    # a zombie keeps its uid until reaped, but there is nothing left to kill
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rpartition(b")")[2][:3].strip() in (b"Z", b"X")


def kill_children() -> int:
    """Kill and reap every child of this process; return how many there were.

    With :func:`o.tools.sandbox.host.adopt_orphans` that includes whatever a tool left
    running, even outside its session.
    """
    killed = 0
    for _ in range(100):
        children = _children_of(os.getpid())
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


def _children_of(parent: int) -> list[int]:
    children = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and int(fields[1]) == parent:
            children.append(int(name))
    return children


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
