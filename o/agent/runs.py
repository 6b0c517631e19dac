"""Runs from the API's side: starting one with the caller's messages, approving a paused
tool call, cancelling, and reading what a run produced (the API shapes it as Letta's LettaResponse)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from o.agent import lifecycle
from o.agent.step import conversation, finish_run, step_id_for
from o.agent.transcript import derived_id
from o.errors import Conflict, InvalidInput, LimitExceeded, NotFound, OError
from o.ids import new_id
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn
from o.store.records import NextAction, Run, RunStatus, StopReason

# a message the caller sends (kept in the run while it waits for its conversation)
InputMessage = conversation.Input


@dataclass(frozen=True)
class Decision:
    """A human's answer to one pending tool call (``tool_call_id`` None: every pending call)."""

    approve: bool
    tool_call_id: str | None = None
    reason: str | None = None


@dataclass
class Started:
    run: Run
    # history position before this request's messages: the response shows what came after
    after_seq: int
    input_ids: list[str] = field(default_factory=list)


class ConversationBusy(Conflict):
    """The caller asked not to wait, and another run of the agent is active."""

    code = "conversation_busy"


def start(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    messages: list[InputMessage],
    request: dict[str, Any],
    *,
    background: bool = False,
    wait: bool = True,
    conversation_id: str | None = None,
) -> Started:
    """Create a run and store the caller's messages in one transaction.

    While another run of the agent is active the new run queues (:mod:`o.agent.step.conversation`):
    its messages enter the history when its turn comes. With ``wait`` False it is refused instead
    (:class:`ConversationBusy`, a 409). Only runs of the same conversation (``conversation_id``; None:
    the agent's own history) are waited for: other conversations of the agent run side by side.
    """
    lifecycle.require(conn, organization_id, agent_id, for_update=True)
    if not messages:
        raise InvalidInput("send at least one message (or an approval)")
    if run_store.awaiting_approval(conn, agent_id, conversation_id=conversation_id) is not None:
        raise Conflict("a tool call is waiting for approval: approve or deny it before sending new messages")
    active = run_store.active_in_conversation(conn, agent_id, conversation_id)
    if active and not wait:
        raise ConversationBusy(
            f"agent {agent_id} is answering another message (run {active[0].id}); send again when it ends, "
            "or send without asking not to wait to queue behind it",
            run_id=active[0].id,
        )
    metadata: dict[str, Any] = {"background": background}
    if active:
        metadata[conversation.QUEUE_KEY] = conversation.position_after(active)
        metadata[conversation.PENDING_KEY] = [m.stored() for m in messages]
    run = run_store.insert(
        conn,
        {
            "id": new_id("run"),
            "organization_id": organization_id,
            "agent_id": agent_id,
            "conversation_id": conversation_id,
            "status": RunStatus.CREATED,
            "request": request,
            "metadata": metadata,
        },
    )
    after = message_store.last_seq(conn)
    if not active:
        message_store.insert_many(conn, conversation.input_rows(run, messages))
    return Started(run, after, conversation.input_ids(run.id, len(messages)))


def approve(
    conn: Conn, organization_id: str, agent_id: str, decisions: list[Decision], *, conversation_id: str | None = None
) -> Started:
    """Record decisions on the paused run's pending tool calls; the run then goes on to its tools."""
    lifecycle.require(conn, organization_id, agent_id)
    run = run_store.awaiting_approval(conn, agent_id, conversation_id=conversation_id, for_update=True)
    if run is None:
        raise Conflict(f"agent {agent_id} has no tool call waiting for approval")
    step = step_store.get(conn, step_id_for(run.id, run.iteration), for_update=True)
    assert step is not None and step.message_id is not None
    request_message = _message(conn, step.message_id)
    pending: list[str] = list((request_message.get("metadata") or {}).get("requires_approval") or [])
    chosen: dict[str, dict[str, Any]] = {}
    for d in decisions:
        targets = pending if d.tool_call_id is None else [d.tool_call_id]
        for call_id in targets:
            if call_id not in pending:
                raise InvalidInput(f"tool call {call_id!r} is not waiting for approval; pending: {pending}")
            chosen[call_id] = {"approve": d.approve, "reason": d.reason}
    missing = [c for c in pending if c not in chosen]
    if missing:
        raise InvalidInput(f"decide every pending tool call; missing: {missing}")
    after = message_store.last_seq(conn)
    first = decisions[0]
    [row] = message_store.insert_many(
        conn,
        [
            {
                "id": derived_id("message", step.id, "approval"),
                "organization_id": organization_id,
                "agent_id": agent_id,
                "role": "approval",
                "content": [],
                "text": first.reason or "",
                "step_id": step.id,
                "run_id": run.id,
                "step_position": -1,
                "metadata": {
                    "approve": all(c["approve"] for c in chosen.values()),
                    "approval_request_id": request_message["id"],
                    "reason": first.reason,
                    "approvals": [{"tool_call_id": k, **v} for k, v in chosen.items()],
                },
            }
        ],
    )
    step_store.update(conn, step.id, {"approvals": chosen})
    run = run_store.update(conn, run.id, {"next_action": NextAction.TOOLS, "stop_reason": None})
    return Started(run, after, [row["id"]])


def _message(conn: Conn, message_id: str) -> dict[str, Any]:
    row = message_store.get(conn, message_id)
    if row is None:
        raise NotFound(f"message {message_id} not found")
    return row


def cancel(conn: Conn, organization_id: str, agent_id: str | None, run_ids: list[str] | None) -> list[Run]:
    """Ask active runs to stop; a run paused on an approval stops at once. Returns the runs touched
    (a run that stopped at once with its task token, for the caller to release a waiting execution)."""
    if run_ids:
        runs = []
        for run_id in run_ids:
            run = run_store.get(conn, run_id, organization_id=organization_id, for_update=True)
            if run is None or (agent_id is not None and run.agent_id != agent_id):
                raise NotFound(f"run {run_id} not found")
            runs.append(run)
    else:
        assert agent_id is not None
        lifecycle.require(conn, organization_id, agent_id)
        runs = run_store.active_for_agent(conn, agent_id)
    touched = []
    for run in runs:
        if run.next_action.ended:
            continue
        if run.next_action == NextAction.APPROVAL:
            # nothing is executing: the run ends now (a waiting state machine is released by the caller)
            finish_run(conn, run, StopReason.CANCELLED)
            touched.append(replace(run, status=RunStatus.CANCELLED))
        else:
            touched.append(run_store.update(conn, run.id, {"cancel_requested": True}))
    return touched


def require(conn: Conn, organization_id: str, run_id: str) -> Run:
    run = run_store.get(conn, run_id, organization_id=organization_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


class RunFailed(OError):
    """A synchronous request whose run failed: the caller gets an error status naming the cause."""

    status_code = 502
    code = "run_failed"


# The worker records why it failed as text (``the run's worker failed: Type: message``, see
# o.agent.runner.failure_text); a domain error of the caller's making keeps its own status.
_CALLER_ERRORS = {cls.__name__: cls.status_code for cls in (InvalidInput, LimitExceeded, Conflict, NotFound)}
_WORKER_FAILED_PREFIX = "the run's worker failed: "
_WORKER_FAILED = re.compile(re.escape(_WORKER_FAILED_PREFIX) + r"(\w+):")


def worker_failure(why: str) -> str:
    """The error recorded on a run whose worker failed with ``why`` (``Type: message``)."""
    return _WORKER_FAILED_PREFIX + why


def raise_if_failed(run: Run) -> None:
    if run.next_action != NextAction.FAILED:
        return
    reason = run.stop_reason or StopReason.ERROR
    error = RunFailed(
        f"the run failed ({reason}): {run.error or 'no detail recorded'}", run_id=run.id, stop_reason=str(reason)
    )
    if reason == StopReason.CONTEXT_WINDOW_OVERFLOW:
        error.status_code = 422  # the agent's own prompt and tools are larger than its model's window
    elif reason == StopReason.ERROR:
        error.status_code = failure_status(run.error or "")
    raise error


def failure_status(error: str) -> int:
    """The HTTP status of a run that failed with ``error``: the agent's own configuration or a domain
    error of the caller's making is theirs to fix (4xx); anything else is O's (500)."""
    if "llm_config" in error:
        return 422
    worker = _WORKER_FAILED.match(error)
    return _CALLER_ERRORS.get(worker.group(1), 500) if worker else 500


def produced(conn: Conn, run_id: str, started: Started) -> tuple[Run, list[dict[str, Any]]]:
    """The run and the messages it produced after ``started`` (not the caller's own); RunFailed if it failed."""
    run = run_store.get(conn, run_id)
    assert run is not None
    raise_if_failed(run)
    rows = run_store.messages(conn, run_id, after_seq=started.after_seq)
    return run, [r for r in rows if r["id"] not in started.input_ids]
