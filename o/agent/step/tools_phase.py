"""Phase 2 of a step: run its tool calls, each result durable at ``(step_id, position)``.

A built-in's memory edit commits in the same transaction as its result, so a replay skips calls
that already have one and never applies an edit twice. The last result commits together with the
step's completion and the decision whether the loop goes on (:func:`o.agent.step.continuation.after_tools`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from o.agent import serving, transcript
from o.agent.events import MessageStored
from o.agent.step.calls import ERROR, SUCCESS, CallResult, judge, rule_history, stored_result
from o.agent.step.continuation import after_tools
from o.agent.step.contract import Outcome, SimulatedCrash, step_id_for
from o.agent.step.deps import StepDeps
from o.agent.step.replay import tools_due
from o.agent.step.reply import AGENT_DELETED
from o.agent.step.rows import tool_message
from o.agent.step.state import ending, enter, finish_run, replay
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import AgentTool, agent_tools
from o.errors import OError
from o.llm.types import ToolCall
from o.memory.embeddings import EmbedderSource
from o.observability import logger
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn
from o.store.records import NextAction, Run, StopReason
from o.tools import builtin, evaluator_lock

# Built-ins that touch no table: they need no savepoint around them.
_WRITES_NOTHING = frozenset({"send_message"})


@dataclass
class _Batch:
    """A step's calls and what judging them needs, read in the phase's first transaction."""

    run: Run
    iteration: int
    calls: list[ToolCall]
    approvals: dict[str, dict[str, Any]]
    tools: dict[str, AgentTool]
    rules: ToolRules
    # the run's calls that count for the rules, this step's stored prefix included; grows as calls run
    history: list[Call]
    # results an earlier attempt of this phase already stored, by position
    stored: dict[int, dict[str, Any]]
    # the agent's message_buffer_autoclear as read with the run: ending the run need not read it again
    autoclear: bool | None = None
    # time.monotonic() when this attempt of the phase began: the step's tool time is measured from it
    started: float = field(default_factory=time.monotonic)

    @property
    def step_id(self) -> str:
        return step_id_for(self.run.id, self.iteration)


@dataclass(frozen=True)
class _Pending:
    """A call's result before it is stored; a built-in runs inside the storing transaction (``builtin_args``)."""

    result: CallResult
    builtin_args: dict[str, Any] | None = None


def tools_phase(deps: StepDeps, run_id: str, iteration: int | None = None) -> Outcome:
    """Phase 2 of step ``iteration``; None: of the step the run stands at (what ``advance`` does)."""
    batch = _prepare(deps, run_id, iteration)
    if isinstance(batch, Outcome):
        return batch
    results: list[CallResult] = []
    for position, call in enumerate(batch.calls, start=1):
        if position in batch.stored:
            # already in ``history``, which was read with it
            results.append(stored_result(call, batch.stored[position]))
            continue
        # the last call's result completes the step in the same transaction
        earlier = results if position == len(batch.calls) else None
        result, outcome = _run_call(deps, batch, position, call, earlier)
        if outcome is not None:
            return outcome
        if not result.violation:
            batch.history.append(result.as_call())
        results.append(result)
    with deps.db.transaction() as conn:
        return complete(conn, batch, results)


def _prepare(deps: StepDeps, run_id: str, iteration: int | None) -> _Batch | Outcome:
    """The step's calls and what judging them needs, read in autocommit (no BEGIN and no COMMIT): each
    result is checked again under the step's lock before it is stored. Only a run whose agent was
    deleted meanwhile is ended, in a transaction that reads again."""
    with deps.db.read() as conn:
        batch = _prepare_in(conn, run_id, iteration, writable=False)
    if batch is not None:
        return batch
    with deps.db.transaction() as conn:
        batch = _prepare_in(conn, run_id, iteration, writable=True)
    assert batch is not None
    return batch


def _prepare_in(conn: Conn, run_id: str, iteration: int | None, *, writable: bool) -> _Batch | Outcome | None:
    """None (only when not ``writable``): the run must be ended."""
    # the results so far come with the run: they are read whenever the phase goes on
    entered = enter(conn, run_id, iteration, finished_at=NextAction.STEP, with_tool_results=True)
    if isinstance(entered, Outcome):
        return entered
    run, step, agent = entered.run, entered.step, entered.agent
    if step is None:
        raise OError(f"run {run_id} has no step {entered.iteration} to run tools for")
    replayed = replay(conn, run, step)
    if not tools_due(run, step, replayed):
        return replayed
    if agent is None:
        return finish_run(conn, run, StopReason.ERROR, error=AGENT_DELETED) if writable else None
    autoclear: bool | None = agent.get("message_buffer_autoclear")
    # the tool rules of the revision that made the calls
    agent = serving.effective_agent(conn, agent, serving.run_revision(run, agent))
    tools = {t.name: t for t in agent_tools(agent, agent.pop("tools_json"))}
    tool_rows = entered.tool_rows
    if tool_rows is None:  # not read with the run (it stood elsewhere)
        tool_rows = message_store.tool_results(conn, run_id)
    step_id = step_id_for(run_id, entered.iteration)
    return _Batch(
        run,
        entered.iteration,
        transcript.calls_from(step.tool_calls),
        step.approvals,
        tools,
        ToolRules.parse(agent["tool_rules"]),
        rule_history(tool_rows),
        {r["step_position"]: r for r in tool_rows if r["step_id"] == step_id},
        autoclear,
    )


def _run_call(
    deps: StepDeps, batch: _Batch, position: int, call: ToolCall, earlier: list[CallResult] | None
) -> tuple[CallResult, Outcome | None]:
    verdict = judge(
        call,
        batch.tools,
        batch.rules,
        batch.history,
        batch.approvals.get(call.id),
        cancelled=batch.run.cancel_requested,
    )
    tool = batch.tools.get(call.name)
    if verdict.error is None and tool is not None and not tool.is_builtin:
        # User code runs outside any transaction: it may be slow, and a crash here only means
        # it runs again on replay (its result is stored once either way).
        ran = _run_user_tool(deps, tool, verdict.args, batch.run)
        pending = _Pending(replace(ran, call=call, heartbeat=verdict.heartbeat))
    elif verdict.error is not None:
        pending = _Pending(CallResult(call, verdict.error, ERROR, verdict.heartbeat, violation=verdict.violation))
    else:
        pending = _Pending(CallResult(call, "", SUCCESS, verdict.heartbeat), builtin_args=verdict.args)
    return _store_result(deps, batch, position, pending, earlier)


def _run_user_tool(deps: StepDeps, tool: AgentTool, args: dict[str, Any], run: Run) -> CallResult:
    call = ToolCall("", tool.name, "")
    if deps.tools is None:
        return CallResult(call, "[ToolError] no sandbox is configured to run user tools", ERROR, False)
    try:
        assert tool.row is not None
        result = deps.tools.run(tool.row, args, organization_id=run.organization_id, agent_id=run.agent_id)
    except SimulatedCrash:
        raise
    except Exception as exc:  # a sandbox failure is the model's problem to route around, not the run's
        return CallResult(call, f"[ToolError] {type(exc).__name__}: {exc}", ERROR, False)
    output = result.func_return if result.ok else (result.func_return or result.message or result.status)
    return CallResult(call, output or "", SUCCESS if result.ok else ERROR, False, result.stdout, result.stderr)


def _store_result(
    deps: StepDeps, batch: _Batch, position: int, pending: _Pending, earlier: list[CallResult] | None
) -> tuple[CallResult, Outcome | None]:
    """Store a call's result once (a built-in's edit with it). Given the step's ``earlier`` results (the
    last call), complete the step in the same transaction: one durable write fewer."""
    outcome: Outcome | None = None
    call = pending.result.call
    # locks in the order run (the last call's: it completes the step), then step; the step's lock
    # serialises concurrent replays, so only one runs a built-in's edit
    if earlier is not None:
        alone = _store_last_alone(deps, batch, position, pending, earlier)
        if alone is not None:
            return alone
    run_id = batch.run.id if earlier is not None else None
    with deps.db.transaction_opened_by(
        lambda conn: step_store.queue_result_locks(conn, run_id, batch.step_id, position)
    ) as (conn, queued):
        locked, row = step_store.result_locks(queued)
        status = pending.result.status
        if row is None:
            result = pending.result
            if pending.builtin_args is not None:
                output, status = _run_builtin(conn, batch.run, call.name, pending.builtin_args, deps.embedders)
                result = replace(result, output=output, status=status)
            deps.inject("before_tool_commit")
            message = tool_message(batch.run, batch.step_id, position, result)
            ended = _end_step_unraced(conn, batch, earlier, locked, (call, message, status))
            if ended is not None:
                row, stored, outcome = ended
            else:
                [row] = message_store.insert_many(conn, [message])
        if outcome is None:
            stored = stored_result(call, row, status)
            if earlier is not None and locked is not None:
                outcome = complete(conn, batch, [*earlier, stored], locked, counted=stored)
    deps.inject("after_tool")
    deps.report(MessageStored(row))
    return stored, outcome


def _end_step_unraced(
    conn: Conn,
    batch: _Batch,
    earlier: list[CallResult] | None,
    locked: Run | None,
    result: tuple[ToolCall, dict[str, Any], str],
) -> tuple[dict[str, Any], CallResult, Outcome] | None:
    """The step's last result (``earlier``: the results before it; None: not the last), the step's
    completion and the run's next step or end (with its outcome for its revision) in one round trip,
    under the run's ``locked`` row; (stored message, result, outcome). ``result``: the call, its message
    and its status. None, nothing written, when it is not the last result, or the run ends clearing its
    context (autoclear, or not known), or the step turns out completed already: then it is stored a
    statement at a time (:func:`complete`)."""
    if earlier is None or locked is None:
        return None
    decided = _decide_last(batch, earlier, locked, result)
    if decided is None:
        return None
    stored, changes, outcome, stop_reason = decided
    record = serving.record_statement(replace(locked, **changes)) if outcome.next == NextAction.DONE else None
    completion = (batch.step_id, outcome.next, stop_reason, (time.monotonic() - batch.started) * 1000)
    also = [record] if record is not None else []
    row = step_store.store_last_result(conn, result[1], completion, locked.id, changes, *also)
    return (row, stored, outcome) if row is not None else None


def _store_last_alone(
    deps: StepDeps, batch: _Batch, position: int, pending: _Pending, earlier: list[CallResult]
) -> tuple[CallResult, Outcome] | None:
    """The step's last result, its completion and the run's next step or end as ONE statement in autocommit
    (:func:`o.store.steps.store_last_result_alone`: no BEGIN, no lock round trip, no COMMIT), when nothing
    needs a transaction around it: the result is known without a write (a user tool's, a refused call's,
    a built-in that touches no table) and the run's end clears no context. The run is the one read when
    the phase began; the statement writes only while it is still so. None, nothing written, otherwise."""
    call, args = pending.result.call, pending.builtin_args
    if batch.run.cancel_requested or (args is not None and not _writes_nothing(call.name, args)):
        return None
    with deps.db.statement() as conn:
        result = pending.result
        if args is not None:
            output, status = _run_builtin(conn, batch.run, call.name, args, deps.embedders)
            result = replace(result, output=output, status=status)
        message = tool_message(batch.run, batch.step_id, position, result)
        decided = _decide_last(batch, earlier, batch.run, (call, message, result.status))
        if decided is None:
            return None
        stored, changes, outcome, stop_reason = decided
        ended = serving.outcome_of(replace(batch.run, **changes)) if outcome.next == NextAction.DONE else None
        completion = (batch.step_id, outcome.next, stop_reason, (time.monotonic() - batch.started) * 1000)
        deps.inject("before_tool_commit")
        row = step_store.store_last_result_alone(conn, batch.run, message, completion, changes, ended)
    if row is None:
        return None
    deps.inject("after_tool")
    deps.report(MessageStored(row))
    return stored, outcome


def _writes_nothing(name: str, args: dict[str, Any]) -> bool:
    """Whether the built-in call runs without touching a table (nor records a refusal)."""
    return name in _WRITES_NOTHING and evaluator_lock.refusal(name, args) is None


def _decide_last(
    batch: _Batch, earlier: list[CallResult], run: Run, result: tuple[ToolCall, dict[str, Any], str]
) -> tuple[CallResult, dict[str, Any], Outcome, StopReason | None] | None:
    """(the last result, the run's changes, the outcome, the stop reason) after the step's last call on
    ``run`` as it stands; None when the run ends clearing its context (autoclear, or not known): that end
    reads and writes more than one statement does."""
    call, message, status = result
    stored = stored_result(call, message, status)
    history = batch.history if stored.violation else [*batch.history, stored.as_call()]
    stop_reason = after_tools([*earlier, stored], batch.rules, history, run, batch.iteration)
    if stop_reason is None:
        changes: dict[str, Any] = {
            "iteration": batch.iteration + 1,
            "next_action": NextAction.STEP,
            "stop_reason": None,
        }
        return stored, changes, Outcome(run.id, batch.iteration + 1, NextAction.STEP), None
    if batch.autoclear is False:
        return stored, ending(stop_reason), Outcome(run.id, run.iteration, NextAction.DONE, stop_reason), stop_reason
    return None


def _run_builtin(conn: Conn, run: Run, name: str, args: dict[str, Any], embedders: EmbedderSource) -> tuple[str, str]:
    context = builtin.ToolContext(conn, run.organization_id, run.agent_id, run.id, embedders)
    # outside the savepoint, so that the record of a tamper attempt outlives the refusal
    refused = evaluator_lock.guard(conn, run.organization_id, run.agent_id, name, args)
    if refused is not None:
        return f"[ToolError] {refused}", ERROR
    try:
        if name in _WRITES_NOTHING:  # no SQL, nothing to roll back: no savepoint (two round trips)
            return builtin.run_builtin(context, name, args), SUCCESS
        # A savepoint: a failing tool's partial writes roll back, the result message still commits.
        with conn.transaction():
            return builtin.run_builtin(context, name, args), SUCCESS
    except (builtin.ToolError, OError) as exc:
        return f"[ToolError] {getattr(exc, 'message', None) or exc}", ERROR
    except SimulatedCrash:
        raise
    except Exception as exc:
        logger.exception("built-in tool failed", extra={"tool": name})
        return f"[ToolError] {name} failed: {type(exc).__name__}: {exc}", ERROR


def complete(
    conn: Conn, batch: _Batch, results: list[CallResult], run: Run | None = None, *, counted: CallResult | None = None
) -> Outcome:
    """Decide whether the loop goes on and complete the step, inside the caller's transaction.

    ``run``: the run when the caller holds its lock already; ``counted``: a result not yet in the
    batch's history (the last call's, stored in this transaction).
    """
    if run is None:
        run = run_store.get(conn, batch.run.id, for_update=True)
    assert run is not None
    history = batch.history
    if counted is not None and not counted.violation:
        history = [*history, counted.as_call()]
    stop_reason = after_tools(results, batch.rules, history, run, batch.iteration)
    # Under the run's lock; a step completed already (a late duplicate) changes nothing.
    next_action = NextAction.STEP if stop_reason is None else NextAction.DONE
    tool_ms = (time.monotonic() - batch.started) * 1000
    if not step_store.complete(conn, batch.step_id, next_action, stop_reason, tool_ms=tool_ms):
        step = step_store.get(conn, batch.step_id)
        assert step is not None
        return replay(conn, run, step)
    if stop_reason is None:
        run_store.update(
            conn, run.id, {"iteration": batch.iteration + 1, "next_action": NextAction.STEP, "stop_reason": None}
        )
        return Outcome(run.id, batch.iteration + 1, NextAction.STEP)
    return finish_run(conn, run, stop_reason, autoclear=batch.autoclear)
