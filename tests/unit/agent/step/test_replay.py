from __future__ import annotations

from o.agent.step.contract import Outcome
from o.agent.step.replay import ended, replayed, start_of, tools_due
from o.store.records import NextAction, StepStatus, StopReason
from tests.unit.agent.step.states import run, step, stored_call


def test_an_ended_run_reports_its_end_whatever_is_asked() -> None:
    done = run(next_action=NextAction.DONE, stop_reason=StopReason.END_TURN, iteration=3)
    assert ended(done) == Outcome("run-1", 3, NextAction.DONE, StopReason.END_TURN)
    assert start_of(done, 1, NextAction.TOOLS) == ended(done)
    assert ended(run()) is None


def test_a_phase_works_on_the_step_asked_for_or_the_one_the_run_stands_at() -> None:
    assert start_of(run(iteration=2), 0, NextAction.TOOLS) == 0
    assert start_of(run(iteration=2), None, NextAction.TOOLS) == 2


def test_a_phase_already_finished_by_an_earlier_attempt_reports_what_comes_next() -> None:
    past_llm = run(iteration=2, next_action=NextAction.TOOLS)
    assert start_of(past_llm, None, NextAction.TOOLS) == Outcome("run-1", 2, NextAction.TOOLS)
    # asked for a step explicitly, the phase looks at that step itself
    assert start_of(past_llm, 2, NextAction.TOOLS) == 2


def test_a_replayed_reply_goes_on_to_its_tools() -> None:
    assert replayed(run(), step(status=StepStatus.LLM_DONE), []) == Outcome("run-1", 0, NextAction.TOOLS)


def test_a_replayed_step_waits_until_every_requested_call_is_decided() -> None:
    calls = [stored_call("a"), stored_call("b")]
    waiting = step(status=StepStatus.AWAITING_APPROVAL, tool_calls=calls, approvals={"a": {"approve": True}})
    assert replayed(run(), waiting, ["a", "b"]) == Outcome(
        "run-1", 0, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL
    )
    assert replayed(run(), waiting, ["a"]) == Outcome("run-1", 0, NextAction.TOOLS)


def test_a_replayed_completed_step_reports_its_decision() -> None:
    going_on = step(status=StepStatus.COMPLETED, next_action=NextAction.STEP, step_index=4)
    assert replayed(run(), going_on, []) == Outcome("run-1", 5, NextAction.STEP)
    stopped = step(status=StepStatus.COMPLETED, next_action=NextAction.DONE, stop_reason=StopReason.TOOL_RULE)
    assert replayed(run(), stopped, []).stop_reason == StopReason.TOOL_RULE
    # the run's own reason wins (a cancel recorded on the run)
    assert replayed(run(stop_reason=StopReason.CANCELLED), stopped, []).stop_reason == StopReason.CANCELLED


def test_a_step_in_no_known_state_fails_the_run() -> None:
    assert replayed(run(), step(status=StepStatus.PENDING), []) == Outcome(
        "run-1", 0, NextAction.FAILED, StopReason.ERROR
    )


def test_tools_run_when_the_reply_is_stored_and_every_approval_is_decided_or_the_run_was_cancelled() -> None:
    to_tools = Outcome("run-1", 0, NextAction.TOOLS)
    to_approval = Outcome("run-1", 0, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL)
    assert tools_due(run(), step(status=StepStatus.LLM_DONE), to_tools)
    assert not tools_due(run(), step(status=StepStatus.AWAITING_APPROVAL), to_approval)
    assert tools_due(run(cancel_requested=True), step(status=StepStatus.AWAITING_APPROVAL), to_approval)
    assert not tools_due(run(), step(status=StepStatus.COMPLETED), to_tools)
