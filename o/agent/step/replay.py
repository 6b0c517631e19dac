"""Where a phase starts, and what a step that is already stored reports next (pure decisions).

Which step to work on comes from the run's durable state: a retried, duplicated or late invocation
finds the work done and only reports what comes next.
"""

from __future__ import annotations

from collections.abc import Collection

from o.agent.step.contract import Outcome
from o.store.records import NextAction, Run, Step, StepStatus, StopReason


def ended(run: Run) -> Outcome | None:
    """The outcome of a run that has ended (done or failed); None while it goes on."""
    if run.next_action.ended:
        return Outcome(run.id, run.iteration, run.next_action, run.stop_reason)
    return None


def start_of(run: Run, iteration: int | None, finished_at: NextAction) -> Outcome | int:
    """The step index a phase works on, or the outcome to report at once: the run has ended, or (asked
    for the step the run stands at) an earlier attempt already finished this phase and the run
    stands at ``finished_at``."""
    done = ended(run)
    if done is not None:
        return done
    if iteration is not None:
        return iteration
    if run.next_action == finished_at:
        return Outcome(run.id, run.iteration, finished_at)
    return run.iteration


def replayed(run: Run, step: Step, requested: Collection[str]) -> Outcome:
    """What comes after a step that was already stored (a retried or duplicated invocation).

    ``requested``: the call ids the step's reply asked a human to approve (read only for a step
    awaiting approval).
    """
    index = step.step_index
    if step.status == StepStatus.LLM_DONE:
        return Outcome(run.id, index, NextAction.TOOLS)
    if step.status == StepStatus.AWAITING_APPROVAL:
        pending = {c["id"] for c in step.tool_calls} & set(requested)
        if pending <= set(step.approvals):
            return Outcome(run.id, index, NextAction.TOOLS)
        return Outcome(run.id, index, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL)
    if step.status == StepStatus.COMPLETED:
        if step.next_action == NextAction.STEP:
            return Outcome(run.id, index + 1, NextAction.STEP)
        return Outcome(run.id, index, NextAction.DONE, run.stop_reason or step.stop_reason)
    return Outcome(run.id, index, NextAction.FAILED, run.stop_reason or StopReason.ERROR)


def tools_due(run: Run, step: Step, replay: Outcome) -> bool:
    """Whether phase 2 runs the step's calls now (``replay``: what :func:`replayed` says of the step).

    Not for a step whose tools are done, nor while a human has not decided every call that needs it;
    a cancelled run does go through its calls, each then recorded as not run.
    """
    if step.status not in (StepStatus.LLM_DONE, StepStatus.AWAITING_APPROVAL):
        return False
    return replay.next != NextAction.APPROVAL or run.cancel_requested
