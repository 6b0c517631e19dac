"""Sleep-time inside ``o serve``: a thread that sweeps the due agents every ``poll_seconds``
(EventBridge Scheduler does this on AWS)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from o.config import SleeptimeSettings
from o.evolution import loop
from o.evolution.deps import EvolutionDeps
from o.evolution.sleeptime.triggers import sweep
from o.observability import logger


@dataclass
class LocalScheduler:
    thread: threading.Thread
    stopped: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped.set()
        self.thread.join(timeout)


def start_local_scheduler(deps: EvolutionDeps, policy: SleeptimeSettings) -> LocalScheduler:
    """Sleep-time compute inside ``o serve``: every ``policy.poll_seconds`` a sweep over the due agents.

    It first resumes the evolutions a previous ``o serve`` left undecided (:func:`loop.resume_incomplete`).
    Call ``.stop()`` on shutdown.
    """
    if deps.executions is None:
        resumed = loop.resume_incomplete(deps)
        if resumed:
            logger.info("resumed undecided evolutions", extra={"evolutions": resumed})
    stopped = threading.Event()
    poll_seconds = policy.poll_seconds

    def work() -> None:
        while not stopped.wait(poll_seconds):
            try:
                sweep(deps, policy, deadline_s=max(poll_seconds, 60.0))
            except Exception:
                logger.exception("sleep-time sweep failed")

    thread = threading.Thread(target=work, name="o-sleeptime", daemon=True)
    thread.start()
    return LocalScheduler(thread, stopped)
