"""The run's durable state as a phase meets it: entering a phase, replaying a stored step, ending a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o.agent import serving
from o.agent.step.continuation import status_for
from o.agent.step.contract import Outcome
from o.agent.step.deps import utcnow
from o.agent.step.replay import replayed, start_of
from o.errors import NotFound
from o.store import messages as message_store
from o.store import runs as run_store
from o.store.db import Conn
from o.store.records import NextAction, Run, RunStatus, Step, StepStatus, StopReason


@dataclass(frozen=True)
class Entered:
    """A phase's starting state: the run, the step it works on (None: not stored yet), the agent
    (None: deleted meanwhile; a JSON object with its tools rows under ``tools_json``)."""

    run: Run
    step: Step | None
    agent: dict[str, Any] | None
    iteration: int


def enter(conn: Conn, run_id: str, iteration: int | None, *, finished_at: NextAction) -> Entered | Outcome:
    """Where phase work starts (step ``iteration``; None: the step the run stands at), or the outcome to
    return at once: the run has ended, or an earlier attempt already finished this phase."""
    run, step, agent = run_store.load_state(conn, run_id, iteration)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    start = start_of(run, iteration, finished_at)
    if isinstance(start, Outcome):
        return start
    return Entered(run, step, agent, start)


def replay(conn: Conn, run: Run, step: Step) -> Outcome:
    """What comes after a step that was already stored (a retried or duplicated invocation)."""
    requested: list[str] = []
    if step.status == StepStatus.AWAITING_APPROVAL and step.message_id is not None:
        requested = message_store.requested_approvals(conn, step.message_id)
    return replayed(run, step, requested)


def finish_run(
    conn: Conn,
    run: Run,
    stop_reason: StopReason,
    *,
    status: RunStatus | None = None,
    error: str | None = None,
    next_action: NextAction = NextAction.DONE,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """End the run (inside the caller's transaction) and record its outcome for its revision."""
    changes: dict[str, Any] = {
        **(extra or {}),
        "status": status if status is not None else status_for(stop_reason),
        "stop_reason": stop_reason,
        "next_action": next_action,
        "completed_at": utcnow(),
        "task_token": None,
    }
    if error is not None:
        changes["error"] = error
    run = run_store.update(conn, run.id, changes)
    # the turn's outcome for its revision's canary figures, committed with the run's end
    serving.record_run(conn, run)
    return Outcome(run.id, run.iteration, next_action, stop_reason)
