"""What a process that runs tool calls does to itself: keep its memory closed to them and,
on a host dedicated to tool calls, adopt what they orphan."""

from __future__ import annotations

import contextlib

_PR_SET_DUMPABLE = 4
_PR_SET_CHILD_SUBREAPER = 36


def harden_host_process() -> None:
    """Make this process's memory and /proc/<pid>/environ unreadable to same-uid processes.

    For hosts that cannot give tools a private uid (the sandbox Lambda, a non-root
    developer machine): a tool still runs as the host's uid there, and without this it
    could read the host's environment (cloud credentials) through /proc.
    """
    import ctypes  # on use only: importing the sandbox (the API does) stays free of it

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def adopt_orphans() -> bool:
    """Become the parent of every process a tool orphans (a child subreaper).

    Only for a host that runs nothing but tool calls, one at a time (the sandbox Lambda):
    then every child still alive after a call is a leftover of that call, and
    :func:`o.tools.sandbox.sweep.kill_children` can remove it even if it left its session.
    Returns whether the kernel accepted.
    """
    import ctypes

    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False
