"""Driving runs: locally a loop over :func:`o.agent.step.execute`; in AWS a Step Functions
execution that calls the same function once per state.

:class:`RunLauncher` is the seam. :class:`LocalLauncher` runs the loop in this process
(inline, or on a background thread for async requests); :class:`StepFunctionsLauncher`
starts an execution with ``{"run_id", "iteration"}`` and releases a waiting one with the
task token stored on the run.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, Protocol

from o.agent.step import Outcome, StepDeps, advance
from o.observability import logger
from o.store import runs as run_store
from o.store.db import Database

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
    outcome = Outcome(run_id, 0, run["next_action"], run["stop_reason"])
    actions = 0
    while outcome.next in ("step", "tools") and actions < max_actions:
        outcome = advance(deps, run_id, outcome.next, outcome.iteration)
        actions += 1
    if outcome.next in ("done", "failed") and deps.on_run_end is not None:
        try:
            deps.on_run_end(run_id)
        except Exception:  # a follow-up's failure is not the run's
            logger.exception("run-end hook failed", extra={"run_id": run_id})
    return outcome


def resume_stale(deps: StepDeps, *, idle_s: float = 60.0, limit: int = 100) -> list[Outcome]:
    """Finish local runs whose worker died (the process stopped mid-run): every run still due a
    ``step`` or ``tools`` action that nothing touched for ``idle_s`` seconds. For ``o serve`` at start.

    Each run resumes from its durable state, so nothing is lost or written twice.
    """
    with deps.db.transaction() as conn:
        stale = conn.execute(
            """SELECT id FROM runs WHERE next_action IN ('step', 'tools')
                 AND updated_at < now() - make_interval(secs => %s)
               ORDER BY updated_at LIMIT %s""",
            (idle_s, limit),
        ).fetchall()
    return [drive(deps, row["id"]) for row in stale]


def store_task_token(db: Database, run_id: str, token: str, counter: int) -> dict[str, Any] | None:
    """Remember the token of an execution waiting for an approval (and its iteration count).

    Returns the run when the approval (or a cancel) already arrived: the caller must then
    release the execution itself, since nobody else will.
    """
    with db.transaction() as conn:
        run = run_store.get(conn, run_id, for_update=True)
        if run is None:
            raise ValueError(f"run {run_id} not found")
        metadata = {**(run["metadata"] or {}), "sfn_iteration": counter}
        if run["next_action"] != "approval":
            return run_store.update(conn, run_id, {"metadata": metadata})
        run_store.update(conn, run_id, {"task_token": token, "metadata": metadata})
        return None


def resume_output(run: dict[str, Any]) -> dict[str, Any]:
    """What a released approval wait hands back to the state machine (SendTaskSuccess output)."""
    counter = int((run.get("metadata") or {}).get("sfn_iteration", 0))
    return {"run_id": run["id"], "iteration": counter, "next": "step"}


class RunLauncher(Protocol):
    # True when launch() returns only after the run finished or paused.
    inline: bool

    def launch(self, run_id: str, *, wait: bool) -> None:
        """Start (or continue, after an approval) the run's loop."""
        ...

    def release(self, run: dict[str, Any]) -> None:
        """Let an execution that waits on this run's approval go on (approved, denied or cancelled)."""
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
            try:
                drive(deps, run_id)
            except Exception as exc:
                # a bug, not a crash: record it on the run rather than leave it for resume_stale
                logger.exception("run failed", extra={"run_id": run_id})
                fail_run(deps.db, run_id, f"{type(exc).__name__}: {exc}")
            return
        thread = threading.Thread(target=self._background, args=(deps, run_id), name=f"run-{run_id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _background(self, deps: StepDeps, run_id: str) -> None:
        try:
            drive(deps, run_id)
        except Exception as exc:
            logger.exception("background run failed", extra={"run_id": run_id})
            fail_run(deps.db, run_id, f"{type(exc).__name__}: {exc}")

    def release(self, run: dict[str, Any]) -> None:
        del run  # nothing waits in-process; the next launch() picks the run up

    def join(self, timeout: float = 30.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)


def fail_run(db: Database, run_id: str, why: str = "unknown error") -> None:
    from o.agent.step import finish_run

    with db.transaction() as conn:
        run = run_store.get(conn, run_id, for_update=True)
        if run is not None and run["next_action"] not in ("done", "failed"):
            finish_run(conn, run, "error", error=f"the run's worker failed: {why}", next_action="failed")


class StepFunctionsLauncher:
    """Runs go through the agent state machine; this process only starts and releases them."""

    inline = False

    def __init__(self, state_machine_arn: str, client: Any | None = None, db: Database | None = None) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client
        self.db = db

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("stepfunctions")
        return self._client

    def launch(self, run_id: str, *, wait: bool) -> None:
        del wait  # the API polls the run's state when it must answer synchronously
        with _db(self).transaction() as conn:
            run = run_store.get(conn, run_id)
        assert run is not None
        # One execution per (run, resumption point): a retried launch cannot start the loop twice.
        name = f"{run_id}-{run['iteration']}-{run['next_action']}"[:80]
        try:
            started = self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps({"run_id": run_id, "iteration": 0}),
            )
        except self.client.exceptions.ExecutionAlreadyExists:
            return
        with _db(self).transaction() as conn:
            run_store.update(conn, run_id, {"execution_arn": started["executionArn"]})

    def release(self, run: dict[str, Any]) -> None:
        token = run.get("task_token")
        if token:
            self.client.send_task_success(taskToken=token, output=json.dumps(resume_output(run)))


def _db(launcher: StepFunctionsLauncher) -> Database:
    if launcher.db is None:
        raise RuntimeError("StepFunctionsLauncher needs the database to record executions")
    return launcher.db
