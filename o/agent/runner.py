"""Driving runs: locally a loop over :func:`o.agent.step.advance`; in AWS a Step Functions
execution that calls the same function once per state.

:class:`RunLauncher` is the seam. :class:`LocalLauncher` runs the loop in this process
(inline, or on a background thread for async requests); :class:`StateMachineLauncher`
starts an execution with ``{"run_id", "iteration"}`` through an :class:`Executions` adapter and
releases a waiting one with the task token stored on the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from o.agent import runs
from o.agent.step import Outcome, StepDeps, advance, conversation
from o.agent.step.state import fail_cleanly, first_line
from o.errors import OError
from o.observability import logger
from o.store import runs as run_store
from o.store.db import Database, DatabaseUnavailable
from o.store.records import NextAction, Run, RunStatus, StopReason

# Standard workflows allow 25,000 history events; a state machine run continues as a new
# execution well before that, and a local loop never takes more actions than this.
MAX_ACTIONS = 10_000


def drive(deps: StepDeps, run_id: str, *, max_actions: int = MAX_ACTIONS) -> Outcome:
    """Run from wherever the run stands until it finishes or pauses for an approval.

    The run's durable state says what to do next, so this also resumes a run whose worker died.
    """
    with deps.db.transaction() as conn:
        run = run_store.get(conn, run_id)
    if run is None:
        raise ValueError(f"run {run_id} not found")
    outcome = Outcome(run_id, 0, run.next_action, run.stop_reason)
    actions = 0
    while outcome.next.due and actions < max_actions:
        outcome = advance(deps, run_id, outcome.next, outcome.iteration)
        actions += 1
    if outcome.next.ended and deps.on_run_end is not None:
        try:
            deps.on_run_end(run_id)
        except Exception:  # a follow-up's failure is not the run's
            logger.exception("run-end hook failed", extra={"run_id": run_id})
    return outcome


def resume_stale(deps: StepDeps, *, idle_s: float = 60.0, limit: int = 100) -> list[Outcome]:
    """Finish local runs whose worker died (the process stopped mid-run): every run still due a
    ``step`` or ``tools`` action that nothing touched for ``idle_s`` seconds. For ``o serve`` at start.

    Each run resumes from its durable state, so nothing is lost or written twice. An agent's runs
    resume one after the other in their conversation's order, different agents' side by side (a run
    queued behind one that waits for an approval must not hold up the others).
    """
    with deps.db.transaction() as conn:
        stale = [
            run for run_id in run_store.stale(conn, idle_s=idle_s, limit=limit) if (run := run_store.get(conn, run_id))
        ]
    groups = conversation.turn_order(stale)
    outcomes: list[Outcome] = []

    def resume(group: list[Run]) -> None:
        for run in group:
            try:
                outcomes.append(drive(deps, run.id))
            except Exception as exc:  # a bug, not a crash: the run ends failed, the others go on
                logger.exception("resuming a run failed", extra={"run_id": run.id})
                fail_eventually(deps.db, run.id, failure_text(exc))

    if len(groups) <= 1:
        for group in groups:
            resume(group)
        return outcomes
    threads = [threading.Thread(target=resume, args=(g,), name="o-resume", daemon=True) for g in groups]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def store_task_token(db: Database, run_id: str, token: str, counter: int) -> Run | None:
    """Remember the token of an execution waiting for an approval (and its iteration count).

    Returns the run when the approval (or a cancel) already arrived: the caller must then
    release the execution itself, since nobody else will.
    """
    with db.transaction() as conn:
        run = run_store.get(conn, run_id, for_update=True)
        if run is None:
            raise ValueError(f"run {run_id} not found")
        metadata = {**run.metadata, "sfn_iteration": counter}
        if run.next_action != NextAction.APPROVAL:
            return run_store.update(conn, run_id, {"metadata": metadata})
        run_store.update(conn, run_id, {"task_token": token, "metadata": metadata})
        return None


def resume_output(run: Run) -> dict[str, Any]:
    """What a released approval wait hands back to the state machine (SendTaskSuccess output)."""
    counter = int(run.metadata.get("sfn_iteration", 0))
    return {
        "run_id": run.id,
        "iteration": counter,
        "conversation_id": run.conversation_id,
        "next": str(NextAction.STEP),
    }


class RunLauncher(Protocol):
    # True when launch() returns only after the run finished or paused.
    inline: bool

    def launch(self, run_id: str, *, wait: bool) -> None:
        """Start (or continue, after an approval) the run's loop."""
        ...

    def release(self, run: Run) -> None:
        """Let an execution that waits on this run's approval go on (approved, denied or cancelled)."""
        ...

    def release_token(self, token: str, run: Run) -> None:
        """Release the execution waiting on ``token`` (its decision came before the token was stored)."""
        ...


class LocalLauncher:
    """The loop in this process. ``deps_for`` builds the step dependencies for one launch."""

    inline = True

    def __init__(self, deps_for: Callable[[], StepDeps]) -> None:
        self.deps_for = deps_for
        self._threads: list[threading.Thread] = []

    def launch(self, run_id: str, *, wait: bool, deps: StepDeps | None = None) -> None:
        deps = deps or self.deps_for()
        if wait:
            self._drive(deps, run_id)
            return
        thread = threading.Thread(target=self._drive, args=(deps, run_id), name=f"run-{run_id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    @staticmethod
    def _drive(deps: StepDeps, run_id: str) -> None:
        try:
            drive(deps, run_id)
        except Exception as exc:
            # a bug or a lost database, not a crash: the run ends failed rather than stay "running"
            logger.exception("run failed", extra={"run_id": run_id})
            fail_eventually(deps.db, run_id, failure_text(exc))

    def release(self, run: Run) -> None:
        del run  # nothing waits in-process; the next launch() picks the run up

    def release_token(self, token: str, run: Run) -> None:
        del token, run  # no execution waits on a token locally

    def join(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)


def fail_run(db: Database, run_id: str, why: str = "unknown error") -> None:
    """End the run failed with ``why`` (:func:`o.agent.step.state.fail_cleanly`: also when ending it
    the usual way fails). Raises DatabaseUnavailable when the database cannot be reached: the caller
    retries (the state machine's MarkFailed, :func:`fail_eventually`)."""
    fail_cleanly(db, run_id, StopReason.ERROR, runs.worker_failure(why))


def failure_text(exc: BaseException, depth: int = 3) -> str:
    """``Type: message`` of an error, and of the errors it was raised while handling: a failure in
    the failure path names the failure it was handling too."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None and len(parts) < depth:
        text = f"{type(current).__name__}: {first_line(str(current))}"
        if text not in parts:
            parts.append(text)
        current = current.__cause__ or current.__context__
    return "; while handling ".join(parts)


def fail_eventually(db: Database, run_id: str, why: str, *, give_up_s: float = 300.0) -> None:
    """:func:`fail_run` now, or, while the database cannot be reached (it is being restarted), again
    and again in the background for up to ``give_up_s`` seconds. Never raises: the caller's request
    answers at once (a 503 while the database is away), and the run does not stay "running"."""
    try:
        fail_run(db, run_id, why)
        return
    except DatabaseUnavailable:
        pass
    except Exception:
        logger.exception("failing a run failed", extra={"run_id": run_id})
        return

    def retry() -> None:
        deadline = time.monotonic() + give_up_s
        delay = 0.5
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
            try:
                fail_run(db, run_id, why)
                return
            except DatabaseUnavailable:
                continue
            except Exception:
                logger.exception("failing a run failed", extra={"run_id": run_id})
                return
        logger.error("a failed run could not be marked failed: the database stayed away", extra={"run_id": run_id})

    threading.Thread(target=retry, name=f"fail-{run_id}", daemon=True).start()


class Executions(Protocol):
    """A workflow engine that runs loops outside this process (AWS: :class:`o.aws.stepfunctions.StateMachine`)."""

    def start(self, name: str, payload: dict[str, Any]) -> str | None:
        """Start an execution called ``name``; its id, or None when one of that name exists already."""
        ...

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        """Let an execution waiting on ``token`` go on with ``output``."""
        ...


class StateMachineLauncher:
    """Runs go through the agent-loop state machine; this process only starts and releases them."""

    inline = False

    def __init__(self, db: Database, executions: Executions) -> None:
        self.db = db
        self.executions = executions

    def launch(self, run_id: str, *, wait: bool) -> None:
        del wait  # the API polls the run's state when it must answer synchronously
        with self.db.transaction() as conn:
            run = run_store.get(conn, run_id)
        assert run is not None
        # One execution per (run, resumption point): a retried launch cannot start the loop twice.
        name = f"{run_id}-{run.iteration}-{run.next_action}"[:80]
        execution = self.executions.start(
            name, {"run_id": run_id, "iteration": 0, "conversation_id": run.conversation_id}
        )
        if execution is None:
            return
        with self.db.transaction() as conn:
            run_store.update(conn, run_id, {"execution_arn": execution})

    def release(self, run: Run) -> None:
        if run.task_token:
            self.executions.send_success(run.task_token, resume_output(run))

    def release_token(self, token: str, run: Run) -> None:
        self.executions.send_success(token, resume_output(run))


def continue_run(launcher: RunLauncher, db: Database, run: Run, *, wait: bool) -> None:
    """Start a new run's loop, or let one paused on an approval go on now that it is decided."""
    resumed = run.next_action == NextAction.TOOLS and run.status != RunStatus.CREATED
    if resumed and not launcher.inline:
        with db.transaction() as conn:
            fresh = run_store.get(conn, run.id)
        assert fresh is not None
        # The waiting execution carries on; without a token yet, await_approval releases itself.
        launcher.release(fresh)
        return
    launcher.launch(run.id, wait=wait)


class StillRunning(OError):
    status_code = 504
    code = "run_in_progress"


def wait_until_settled(db: Database, run_id: str, timeout_s: float) -> None:
    """Follow a state machine run until it ends or pauses; past ``timeout_s`` say where to find it."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        with db.transaction() as conn:
            run = run_store.get(conn, run_id)
        if run is None or not run.next_action.due:
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise StillRunning(
        f"run {run_id} is still working after {timeout_s:g} s; follow it at GET /v1/runs/{run_id} "
        "(or send with /messages/async or /messages/stream)",
        run_id=run_id,
    )


def cancel(
    launcher: RunLauncher, db: Database, organization_id: str, agent_id: str | None, run_ids: list[str] | None
) -> list[Run]:
    """Cancel runs (:func:`o.agent.runs.cancel`), then let an execution that waits on a cancelled run's
    approval go on to its end; the runs touched."""
    with db.transaction() as conn:
        touched = runs.cancel(conn, organization_id, agent_id, run_ids)
    for run in touched:
        if run.task_token:
            launcher.release(run)
    return touched
