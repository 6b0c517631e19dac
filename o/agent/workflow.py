"""The agent loop as the Step Functions state machine drives it (infra/agent_loop.py): one action
per Task, the same ``advance`` the local runner loops over.

Runs whose execution failed: the loop's Catch hands its error here (action ``fail``) so the run
ends ``failed`` instead of staying ``running`` with nothing left to finish it."""

from __future__ import annotations

import json
from typing import Any

from o.agent.engine import Engine
from o.agent.runner import fail_run, store_task_token
from o.agent.step import Outcome, advance
from o.store.db import Database
from o.store.records import NextAction, StopReason

# Enough of a Step Functions cause to say what went wrong; the full text stays in the execution history.
CAUSE_CHARS = 1000
# Step Functions gives no cause with a timeout; this one would otherwise read as a bare name.
_NO_CAUSE = {"States.Timeout": "the state ran past its timeout (an approval nobody answered in time)"}


def perform(
    engine: Engine,
    action: str,
    run_id: str,
    iteration: int,
    *,
    task_token: str | None = None,
    error: dict[str, Any] | None = None,
    version: str = "$LATEST",
) -> dict[str, Any]:
    """One Task of the agent loop; returns the contract's ``{"run_id", "iteration", "next", "stop_reason"}``."""
    if action == "fail":
        return fail_from_workflow(engine.db, run_id, iteration, error or {}).to_dict()
    if action == "await_approval":
        if not task_token:
            raise ValueError("await_approval needs a task_token")
        settled = store_task_token(engine.db, run_id, task_token, iteration)
        if settled is not None:
            # The decision (or a cancel) came before the token: nobody else will release the wait.
            engine.launcher.release_token(task_token, settled)
        return Outcome(run_id, iteration, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL).to_dict()
    return advance(engine.deps(version=version), run_id, action, iteration).to_dict()


def fail_from_workflow(db: Database, run_id: str, iteration: int, error: dict[str, Any]) -> Outcome:
    """The execution caught an error its retries did not cure (a Lambda that keeps crashing, an
    approval wait that timed out, a bug): fail the run with that error, so a client polling it
    learns why. ``error`` is the Catch's ``{"Error", "Cause"}``. A run that already ended
    (completed, cancelled, failed) keeps its ending, so a retried call changes nothing."""
    fail_run(db, run_id, f"the agent-loop execution stopped on {workflow_error_text(error)}")
    return Outcome(run_id, iteration, NextAction.FAILED, StopReason.ERROR)


def workflow_error_text(error: dict[str, Any]) -> str:
    """``Error: cause`` from a Step Functions error; a Lambda's JSON cause reads as ``type: message``."""
    name = str(error.get("Error") or "an unnamed error")
    cause = error.get("Cause") or _NO_CAUSE.get(name)
    if isinstance(cause, str):
        try:
            parsed = json.loads(cause)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and parsed.get("errorMessage") is not None:
            kind = parsed.get("errorType")
            cause = f"{kind}: {parsed['errorMessage']}" if kind and kind != name else str(parsed["errorMessage"])
    text = f"{name}: {cause}" if cause else name
    return text if len(text) <= CAUSE_CHARS else text[: CAUSE_CHARS - 1] + "…"
