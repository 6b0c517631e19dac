"""The run's durable state as a phase meets it: entering a phase, replaying a stored step, ending a run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from o.agent import serving
from o.agent.step.agent_cache import AgentCache, default_agents
from o.agent.step.continuation import status_for
from o.agent.step.contract import Outcome
from o.agent.step.deps import utcnow
from o.agent.step.replay import replayed, start_of
from o.errors import NotFound
from o.observability import logger
from o.store import agents as agent_store
from o.store import messages as message_store
from o.store import runs as run_store
from o.store.db import Conn, Database, DatabaseUnavailable
from o.store.records import NextAction, Run, RunStatus, Step, StepStatus, StopReason


@dataclass(frozen=True)
class Entered:
    """A phase's starting state: the run, the step it works on (None: not stored yet), the agent
    (None: deleted meanwhile; a JSON object with its tools rows under ``tools_json``)."""

    run: Run
    step: Step | None
    agent: dict[str, Any] | None
    iteration: int
    # the run's tool results so far, when asked for with the state
    tool_rows: list[dict[str, Any]] | None = None
    # the in-context messages of the run's conversation as the phase began, when asked for
    context: list[dict[str, Any]] | None = None


def enter(
    conn: Conn,
    run_id: str,
    iteration: int | None,
    *,
    finished_at: NextAction,
    agents: AgentCache = default_agents,
    with_tool_results: bool = False,
    with_context: bool = False,
) -> Entered | Outcome:
    """Where phase work starts (step ``iteration``; None: the step the run stands at), or the outcome to
    return at once: the run has ended, or an earlier attempt already finished this phase.
    ``with_tool_results``, ``with_context``: the run's tool results so far, the in-context messages of its
    conversation come with it, read in the same statement."""
    state = run_store.load_state(conn, run_id, iteration, context=with_context, tool_results=with_tool_results)
    run = state.run
    if run is None:
        raise NotFound(f"run {run_id} not found")
    start = start_of(run, iteration, finished_at)
    if isinstance(start, Outcome):
        return start
    agent = agents.agent(conn, run.organization_id, run.agent_id, state.agent_version)
    return Entered(run, state.step, agent, start, state.tool_results, state.context)


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
    autoclear: bool | None = None,
) -> Outcome:
    """End the run (inside the caller's transaction) and record its outcome for its revision.

    ``autoclear``: the agent's message_buffer_autoclear when the caller read it already (None: read it)."""
    changes = {**(extra or {}), **ending(stop_reason, status=status, next_action=next_action)}
    if error is not None:
        changes["error"] = error
    run = run_store.update(conn, run.id, changes)
    if next_action == NextAction.FAILED:
        forget_turn(conn, run.id)
    elif next_action == NextAction.DONE and (
        autoclear if autoclear is not None else agent_store.autoclears(conn, run.agent_id)
    ):
        # Letta's message_buffer_autoclear: the next run starts from memory alone (the messages stay in recall)
        message_store.evict_all(conn, run.agent_id, run.conversation_id)
    # the turn's outcome for its revision's canary figures, committed with the run's end
    serving.record_run(conn, run)
    return Outcome(run.id, run.iteration, next_action, stop_reason)


def ending(
    stop_reason: StopReason, *, status: RunStatus | None = None, next_action: NextAction = NextAction.DONE
) -> dict[str, Any]:
    """The changes that end a run for ``stop_reason``."""
    return {
        "status": status if status is not None else status_for(stop_reason),
        "stop_reason": stop_reason,
        "next_action": next_action,
        "completed_at": utcnow(),
        "task_token": None,
    }


def fail_cleanly(
    db: Database, run_id: str, stop_reason: StopReason, error: str, *, status: RunStatus | None = None
) -> Outcome:
    """End the run failed with ``error`` (unless it ended already: a retry changes nothing), even when
    ending it the usual way fails too (recording its outcome hit a bug or a broken table): then it is
    marked failed with both errors, without the extras. Raises DatabaseUnavailable when the database
    cannot be reached, for the caller to retry."""
    try:
        with db.transaction() as conn:
            run = run_store.get(conn, run_id, for_update=True)
            if run is None or run.next_action.ended:
                return Outcome(run_id, run.iteration if run else 0, NextAction.FAILED, stop_reason)
            return finish_run(conn, run, stop_reason, status=status, error=error, next_action=NextAction.FAILED)
    except DatabaseUnavailable:
        raise
    except Exception as exc:
        logger.exception("ending a failed run failed; marking it failed without its extras", extra={"run_id": run_id})
        both = f"{error} (then ending the run failed: {type(exc).__name__}: {first_line(str(exc))})"
        with db.transaction() as conn:
            return mark_failed(conn, run_id, both, stop_reason)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def mark_failed(conn: Conn, run_id: str, error: str, stop_reason: StopReason = StopReason.ERROR) -> Outcome:
    """The failure path's last resort, for when :func:`finish_run` itself failed: the run ends failed
    with ``error`` and nothing else (its outcome for its revision goes unrecorded). A run that has
    ended keeps its ending."""
    run = run_store.get(conn, run_id, for_update=True)
    if run is None or run.next_action.ended:
        return Outcome(run_id, run.iteration if run else 0, NextAction.FAILED, stop_reason)
    run_store.update(
        conn,
        run_id,
        {
            "status": RunStatus.FAILED,
            "stop_reason": stop_reason,
            "next_action": NextAction.FAILED,
            "error": error,
            "completed_at": utcnow(),
            "task_token": None,
        },
    )
    forget_turn(conn, run_id)
    return Outcome(run_id, run.iteration, NextAction.FAILED, stop_reason)


def forget_turn(conn: Conn, run_id: str) -> None:
    """A failed run's messages leave the context window: the next prompt must not carry a turn nobody
    answered (or half a tool exchange). They stay in the history, where a client sees them."""
    message_store.evict(conn, [m["id"] for m in run_store.messages(conn, run_id)])
