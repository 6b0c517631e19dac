from __future__ import annotations

import pytest

from o.agent.step.calls import CallResult
from o.agent.step.continuation import after_tools, status_for
from o.agent.tool_rules import Call, ToolRules
from o.llm.types import ToolCall
from o.store.records import RunStatus, StopReason
from tests.unit.agent.step.states import run

NO_RULES = ToolRules.parse([])


def _result(name: str, *, status: str = "success", heartbeat: bool = False, output: str = "ok") -> CallResult:
    return CallResult(ToolCall("c-" + name, name, "{}"), output, status, heartbeat)


def test_without_a_heartbeat_the_turn_ends() -> None:
    assert after_tools([_result("send_message")], NO_RULES, [], run(), 0) == StopReason.END_TURN


def test_a_heartbeat_or_an_error_goes_on() -> None:
    assert after_tools([_result("search", heartbeat=True)], NO_RULES, [], run(), 0) is None
    assert after_tools([_result("search", status="error")], NO_RULES, [], run(), 0) is None


def test_going_on_past_max_steps_stops_the_run() -> None:
    results = [_result("search", heartbeat=True)]
    assert after_tools(results, NO_RULES, [], run(request={"max_steps": 3}), 1) is None
    assert after_tools(results, NO_RULES, [], run(request={"max_steps": 3}), 2) == StopReason.MAX_STEPS


def test_a_cancel_stops_the_run_whatever_the_calls_asked() -> None:
    results = [_result("search", heartbeat=True)]
    assert after_tools(results, NO_RULES, [], run(cancel_requested=True), 0) == StopReason.CANCELLED


def test_a_terminal_tool_ends_the_turn_and_a_heartbeat_on_it_is_a_rule_stop() -> None:
    rules = ToolRules.parse([{"type": "exit_loop", "tool_name": "done"}])
    assert after_tools([_result("done")], rules, [], run(), 0) == StopReason.END_TURN
    assert after_tools([_result("done", heartbeat=True)], rules, [], run(), 0) == StopReason.TOOL_RULE
    # calls after the terminal one change nothing
    assert after_tools([_result("done"), _result("x", heartbeat=True)], rules, [], run(), 0) == StopReason.END_TURN


def test_continue_and_child_rules_keep_the_loop_going() -> None:
    rules = ToolRules.parse([{"type": "continue_loop", "tool_name": "search"}])
    assert after_tools([_result("search")], rules, [], run(), 0) is None


def test_an_output_a_conditional_rule_cannot_map_stops_the_run() -> None:
    rules = ToolRules.parse(
        [
            {
                "type": "conditional",
                "tool_name": "check",
                "child_output_mapping": {"yes": "fetch"},
                "require_output_mapping": True,
            }
        ]
    )
    assert after_tools([_result("check", output="maybe")], rules, [], run(), 0) == StopReason.INVALID_TOOL_CALL
    assert after_tools([_result("check", output="yes")], rules, [], run(), 0) is None


def test_a_tool_required_before_exit_keeps_the_loop_going_until_called() -> None:
    rules = ToolRules.parse([{"type": "required_before_exit", "tool_name": "save"}])
    assert after_tools([_result("send_message")], rules, [Call("send_message")], run(), 0) is None
    history = [Call("save"), Call("send_message")]
    assert after_tools([_result("send_message")], rules, history, run(), 0) == StopReason.END_TURN


@pytest.mark.parametrize(
    ("reason", "status"),
    [
        (StopReason.END_TURN, RunStatus.COMPLETED),
        (StopReason.MAX_STEPS, RunStatus.COMPLETED),
        (StopReason.TOOL_RULE, RunStatus.COMPLETED),
        (StopReason.CANCELLED, RunStatus.CANCELLED),
        (StopReason.ERROR, RunStatus.FAILED),
        (StopReason.LLM_API_ERROR, RunStatus.FAILED),
    ],
)
def test_how_a_run_ends_follows_why_it_stopped(reason: StopReason, status: RunStatus) -> None:
    assert status_for(reason) == status
