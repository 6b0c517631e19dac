"""When a failed sleep-time pass is tried again: the wait doubles with each failure in a row, up to a cap.

Without it a pass that keeps failing (its model's endpoint is down, its key revoked) is retried on
every sweep and after every run, each time with a log entry. The memory is per process: on AWS a warm
sleep-time Lambda keeps it between invocations, a cold one starts over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from o.evolution.sleeptime.result import PassResult
from o.observability import logger

# The longest wait between two tries of an agent whose passes keep failing.
CAP_S = 3600.0


def retry_delay(failures: int, base_s: float, cap_s: float = CAP_S) -> float:
    """Seconds to wait after ``failures`` failures in a row (0 after none): base, 2x base, 4x base, ... cap."""
    if failures <= 0:
        return 0.0
    return float(min(cap_s, base_s * 2 ** min(failures - 1, 62)))


@dataclass(frozen=True)
class Failures:
    count: int
    last_at: float


@dataclass
class PassBackoff:
    """The agents whose last pass failed, and when each may be tried again."""

    base_s: float = 30.0
    cap_s: float = CAP_S
    clock: Callable[[], float] = time.monotonic
    _failures: dict[str, Failures] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ready(self, agent_id: str) -> bool:
        """Whether the agent may be tried now."""
        with self._lock:
            failed = self._failures.get(agent_id)
        if failed is None:
            return True
        return self.clock() - failed.last_at >= retry_delay(failed.count, self.base_s, self.cap_s)

    def record(self, agent_id: str, result: PassResult) -> None:
        """Remember how the agent's pass ended; a failure is logged in one line with the next try."""
        if result.status != "failed":
            with self._lock:
                self._failures.pop(agent_id, None)
            return
        self.failed(agent_id, result.error or "unknown error")

    def failed(self, agent_id: str, error: str) -> float:
        """Record a failure (a failed pass, or one that raised); the seconds until the next try."""
        with self._lock:
            before = self._failures.get(agent_id)
            count = 1 if before is None else before.count + 1
            self._failures[agent_id] = Failures(count, self.clock())
        wait = retry_delay(count, self.base_s, self.cap_s)
        # one line per failure: the error's first line, no traceback (a pass failing every sweep
        # must not grow the log by kilobytes each time)
        logger.warning(
            "sleep-time pass failed",
            extra={"agent_id": agent_id, "error": first_line(error), "failures": count, "retry_in_s": wait},
        )
        return wait


def first_line(error: str, limit: int = 300) -> str:
    line = error.strip().splitlines()[0] if error.strip() else "unknown error"
    return line if len(line) <= limit else line[: limit - 1] + "…"
