"""Whether the loop goes on after a step's tool calls, and how a run that stops ends (pure decisions)."""

from __future__ import annotations

from o.agent.step.calls import CallResult
from o.agent.tool_rules import Call, ToolRules
from o.store.records import Run, RunStatus, StopReason

DEFAULT_MAX_STEPS = 50

# A run that stops for any other reason completed.
_STATUS = {
    StopReason.CANCELLED: RunStatus.CANCELLED,
    StopReason.ERROR: RunStatus.FAILED,
    StopReason.LLM_API_ERROR: RunStatus.FAILED,
}


def max_steps(run: Run) -> int:
    return int(run.request.get("max_steps") or DEFAULT_MAX_STEPS)


def status_for(stop_reason: StopReason) -> RunStatus:
    """The status a run ends with when it stops for ``stop_reason``."""
    return _STATUS.get(stop_reason, RunStatus.COMPLETED)


def after_tools(
    results: list[CallResult], rules: ToolRules, history: list[Call], run: Run, iteration: int
) -> StopReason | None:
    """None when the loop goes on with step ``iteration + 1``; else why the run stops.

    ``results`` are the step's calls in order, ``history`` every call of the run that counts for the
    tool rules (this step's included); ``run`` as it stands under its lock (a cancel, ``max_steps``).
    """
    keep_going, stop_reason = _asked_by_calls(results, rules)
    if not keep_going and stop_reason is None and rules.uncalled_required(history):
        keep_going = True
    if run.cancel_requested:
        return StopReason.CANCELLED
    if keep_going and iteration + 1 >= max_steps(run):
        return StopReason.MAX_STEPS
    return None if keep_going else (stop_reason or StopReason.END_TURN)


def _asked_by_calls(results: list[CallResult], rules: ToolRules) -> tuple[bool, StopReason | None]:
    """What the calls themselves ask for: go on (a heartbeat, an error the model must hear about, a
    continue rule) or stop (a terminal tool, an output a conditional rule cannot map)."""
    keep_going = False
    for result in results:
        ok = result.status == "success"
        wants = result.heartbeat or not ok
        if ok and rules.conditional_error(Call(result.call.name, result.output)):
            # a conditional rule that must map the output has no branch for it: Letta stops here
            return False, StopReason.INVALID_TOOL_CALL
        if ok and rules.is_terminal(result.call.name):
            return False, StopReason.TOOL_RULE if wants else None
        if wants or rules.forces_continue(result.call.name):
            keep_going = True
    return keep_going, None
