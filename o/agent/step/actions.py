"""The state machine's actions: ``step`` (phase 1) and ``tools`` (phase 2) of a run's current step."""

from __future__ import annotations

import time

from o.agent.step.contract import Outcome
from o.agent.step.deps import StepDeps
from o.agent.step.llm_phase import llm_phase
from o.agent.step.tools_phase import tools_phase
from o.errors import NotFound
from o.store.records import NextAction, StopReason

# A queued run looks whether its turn came at least this often (one indexed read each time).
QUEUE_POLL_MAX_S = 0.2


def execute(deps: StepDeps, run_id: str, iteration: int, action: str) -> Outcome:
    """Phase ``step`` (1) or ``tools`` (2) of step ``iteration`` (the step index) of the run."""
    if action == NextAction.STEP:
        return llm_phase(deps, run_id, iteration)
    if action == NextAction.TOOLS:
        return tools_phase(deps, run_id, iteration)
    raise ValueError(f"unknown action {action!r}")


def advance(deps: StepDeps, run_id: str, action: str, counter: int = 0) -> Outcome:
    """One action of the state machine contract; what both Step Functions and the local runner call.

    Which step to work on comes from the run's durable state, not from the caller: a retried,
    duplicated or late invocation finds the work done and just reports what comes next. The
    returned ``iteration`` is ``counter`` advanced by the steps begun, a per-execution count the
    state machine compares with its cap (a continued execution starts again at 0).
    """
    if action not in (NextAction.STEP, NextAction.TOOLS):
        raise ValueError(f"unknown action {action!r}")
    try:
        outcome = _act(deps, run_id, action)
    except NotFound:
        # the run (or its agent) was deleted meanwhile: end the loop instead of retrying forever
        return Outcome(run_id, counter, NextAction.FAILED, StopReason.ERROR)
    # Only completing a step's tools moves the run on to a new step. A queued run's wait counts as a
    # step too: a state machine execution that waits long continues as a new one at its cap, so its
    # history stays bounded.
    begun = 1 if outcome.next == NextAction.STEP else 0
    return Outcome(run_id, counter + begun, outcome.next, outcome.stop_reason)


def _act(deps: StepDeps, run_id: str, action: str) -> Outcome:
    """The phase; a run queued behind another run of its agent waits for its turn up to
    ``deps.queue_wait_s`` (then reports "step" unchanged, to be asked again)."""
    if action == NextAction.TOOLS:
        return tools_phase(deps, run_id)
    outcome = llm_phase(deps, run_id)
    deadline = time.monotonic() + deps.queue_wait_s
    delay = 0.01
    while outcome.queued and time.monotonic() < deadline:
        time.sleep(delay)
        delay = min(delay * 1.5, QUEUE_POLL_MAX_S)
        outcome = llm_phase(deps, run_id)
    return outcome
