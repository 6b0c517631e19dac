"""When a sleep-time pass is due: every N new user messages, or the interval elapsed with anything new.

:func:`due_agents` and :func:`sweep` serve the schedule (EventBridge Scheduler → ``functions/sleeptime``,
or the local scheduler); :func:`after_user_messages` and :class:`RunEndTrigger` count after each run.
Shadow-test scratch copies are never due.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from o.config import SleeptimeSettings
from o.errors import Conflict
from o.evolution.deps import EvolutionDeps
from o.evolution.shadow import SCRATCH_PREFIX
from o.evolution.sleeptime.backoff import PassBackoff, first_line
from o.evolution.sleeptime.passes import run_pass
from o.evolution.sleeptime.result import PassResult
from o.memory import recall
from o.observability import logger
from o.store import sleeptime as sleeptime_store
from o.store.db import Database
from o.store.sleeptime import AgentNews


def due_trigger(news: AgentNews, policy: SleeptimeSettings, now: datetime) -> str | None:
    """ "messages" after N new user messages, "schedule" once the interval has elapsed, else None."""
    if news.new_user_messages >= policy.every_n_messages:
        return "messages"
    if news.last_pass_at is None or now - news.last_pass_at >= timedelta(seconds=policy.interval_seconds):
        return "schedule"
    return None


def due_agents(db: Database, policy: SleeptimeSettings, *, now: datetime | None = None) -> list[tuple[str, str, str]]:
    """(organization id, agent id, trigger) of agents due for a pass."""
    now = now or datetime.now(UTC)
    with db.transaction() as conn:
        candidates = sleeptime_store.agents_with_news(conn, skip_org_prefix=SCRATCH_PREFIX)
    due = []
    for news in candidates:
        trigger = due_trigger(news, policy, now)
        if trigger is not None:
            due.append((news.organization_id, news.agent_id, trigger))
    return due


# Agents whose passes failed, for the callers that bring none (the sleep-time Lambda, the run-end trigger).
FAILED_PASSES = PassBackoff()


def sweep(
    deps: EvolutionDeps,
    policy: SleeptimeSettings | None = None,
    *,
    deadline_s: float = 600.0,
    only_messages: bool = False,
    backoff: PassBackoff | None = None,
    stop: threading.Event | None = None,
) -> list[PassResult]:
    """One pass for every due agent, until ``deadline_s`` runs out (the rest wait for the next sweep).

    An agent whose last passes failed waits out its backoff; one agent's failure does not keep the
    others from their pass. ``stop`` set: the sweep ends after the pass under way.
    """
    policy = policy or SleeptimeSettings()
    backoff = FAILED_PASSES if backoff is None else backoff
    started = time.monotonic()
    results = []
    for org_id, agent_id, trigger in due_agents(deps.db, policy):
        if stop is not None and stop.is_set():
            break
        if (only_messages and trigger != "messages") or not backoff.ready(agent_id):
            continue
        if time.monotonic() - started > deadline_s:
            break
        result = attempt_pass(deps, org_id, agent_id, trigger, policy, backoff, stop=stop)
        if result is not None:
            results.append(result)
    return results


def attempt_pass(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    trigger: str,
    policy: SleeptimeSettings,
    backoff: PassBackoff,
    *,
    stop: threading.Event | None = None,
) -> PassResult | None:
    """A pass whose failure, even one that escapes it (the database went away), is one log line and
    a longer wait for the agent; None when another pass of the agent runs or it failed that way."""
    try:
        result = run_pass(deps, organization_id, agent_id, trigger=trigger, policy=policy)
    except Conflict:
        return None
    except Exception as exc:
        if stop is None or not stop.is_set():  # during shutdown its database is going away: not news
            backoff.failed(agent_id, f"{type(exc).__name__}: {exc}")
        return None
    backoff.record(agent_id, result)
    return result


_after_lock = threading.Lock()
_after_running: set[str] = set()


def after_user_messages(
    deps: EvolutionDeps,
    organization_id: str,
    agent_id: str,
    *,
    policy: SleeptimeSettings | None = None,
    background: bool = True,
    backoff: PassBackoff | None = None,
) -> bool:
    """The "every N user messages" trigger, for the agent loop to call when a run ends.

    Counts the agent's user messages since the last completed pass (one indexed query) and, when
    ``every_n_messages`` is reached, runs a pass — on a background thread unless ``background`` is
    False — unless the agent's last passes failed and it waits out its backoff. Returns whether a
    pass was started.
    """
    policy = policy or SleeptimeSettings()
    backoff = FAILED_PASSES if backoff is None else backoff
    if not backoff.ready(agent_id):
        return False
    with deps.db.transaction() as conn:
        since = sleeptime_store.through_seq(conn, agent_id)
        new_user_messages = sleeptime_store.user_messages_since(conn, agent_id, since)
    if new_user_messages < policy.every_n_messages:
        return False
    with _after_lock:
        if agent_id in _after_running:
            return False
        _after_running.add(agent_id)

    def work() -> None:
        try:
            attempt_pass(deps, organization_id, agent_id, "messages", policy, backoff)
        finally:
            with _after_lock:
                _after_running.discard(agent_id)

    if background:
        threading.Thread(target=work, name=f"sleeptime-{agent_id}", daemon=True).start()
    else:
        work()
    return True


class RunEndTrigger:
    """:func:`after_user_messages` for every run the local agent loop finishes, kept off the request path.

    Set as the engine's ``on_run_end``: the loop only puts the run id on a queue. One worker thread
    looks up the run's agent, skips shadow-test scratch copies, and counts; a due pass then runs on
    its own thread (``after_user_messages``), so a long pass never delays the next count either.
    """

    def __init__(self, deps_for: Callable[[], EvolutionDeps], policy: SleeptimeSettings | None = None) -> None:
        self.deps_for = deps_for
        self.policy = policy or SleeptimeSettings()
        self._queue: queue.Queue[str] = queue.Queue()
        self._deps: EvolutionDeps | None = None
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def __call__(self, run_id: str) -> None:
        self._queue.put(run_id)
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(target=self._work, name="o-sleeptime-trigger", daemon=True)
                    self._worker.start()

    def _work(self) -> None:
        while True:
            run_id = self._queue.get()
            try:
                self.check(run_id)
            except Exception as exc:  # one line: a database that is down would fail every check alike
                logger.warning("sleep-time trigger failed", extra={"run_id": run_id, "error": first_line(str(exc))})
            finally:
                self._queue.task_done()

    def check(self, run_id: str) -> bool:
        """Start a pass for the run's agent if it is due; whether one was started."""
        if self._deps is None:
            self._deps = self.deps_for()
        deps = self._deps
        with deps.db.transaction() as conn:
            owner = sleeptime_store.run_agent(conn, run_id, skip_org_prefix=SCRATCH_PREFIX)
        if owner is None:  # a shadow replay's run, or one deleted with its agent
            return False
        organization_id, agent_id = owner
        # Embed the run's messages for conversation_search now, off the request path, rather than
        # inline in the first search after a long history.
        with deps.db.transaction() as conn:
            recall.index_pending(conn, organization_id, agent_id, embedders=deps.engine.embedders)
        return after_user_messages(deps, organization_id, agent_id, policy=self.policy)

    def drain(self) -> None:
        """Wait until every queued run was looked at (the passes it started may still be running)."""
        self._queue.join()
