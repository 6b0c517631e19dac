"""Sleep-time inside ``o serve``: a thread that sweeps the due agents every ``poll_seconds``
(EventBridge Scheduler does this on AWS)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from o.config import SleeptimeSettings
from o.evolution import loop
from o.evolution.deps import EvolutionDeps
from o.evolution.sleeptime.backoff import PassBackoff, first_line, retry_delay
from o.evolution.sleeptime.triggers import sweep
from o.observability import logger

# How long a stop waits for the sweep under way: a pass may be in its model's retries, and `o serve`
# must stop within 2 s. The thread is a daemon; a pass cut short is claimed again after it goes stale.
STOP_WAIT_S = 0.2


@dataclass
class LocalScheduler:
    thread: threading.Thread
    stopped: threading.Event

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        self.stopped.set()
        self.thread.join(timeout)


def start_local_scheduler(deps: EvolutionDeps, policy: SleeptimeSettings) -> LocalScheduler:
    """Sleep-time compute inside ``o serve``: every ``policy.poll_seconds`` a sweep over the due agents.

    It first resumes the evolutions a previous ``o serve`` left undecided (:func:`loop.resume_incomplete`).
    Agents whose passes fail are tried again after a growing wait; a sweep that fails as a whole (the
    database is down) is one log line, and the next waits longer too. Call ``.stop()`` on shutdown.
    """
    if deps.executions is None:
        resumed = loop.resume_incomplete(deps)
        if resumed:
            logger.info("resumed undecided evolutions", extra={"evolutions": resumed})
    stopped = threading.Event()
    poll_seconds = policy.poll_seconds
    backoff = PassBackoff(base_s=poll_seconds)

    def work() -> None:
        failures = 0
        while not stopped.wait(max(poll_seconds, retry_delay(failures, poll_seconds))):
            try:
                sweep(deps, policy, deadline_s=max(poll_seconds, 60.0), backoff=backoff, stop=stopped)
                failures = 0
            except Exception as exc:
                if stopped.is_set():
                    return
                failures += 1
                wait = retry_delay(failures, poll_seconds)
                logger.warning("sleep-time sweep failed", extra={"error": first_line(str(exc)), "retry_in_s": wait})

    thread = threading.Thread(target=work, name="o-sleeptime", daemon=True)
    thread.start()
    return LocalScheduler(thread, stopped)
