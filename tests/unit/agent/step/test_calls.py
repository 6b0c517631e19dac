from __future__ import annotations

import pytest

from o.agent.step.calls import (
    CANCELLED_BEFORE_RUN,
    CallResult,
    Verdict,
    heartbeat_requested,
    judge,
    rule_history,
    stored_result,
)
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import AgentTool
from o.llm.types import ToolCall

TOOLS = {name: AgentTool(name, "", {}) for name in ("search", "send_message")}
NO_RULES = ToolRules.parse([])


def _judge(
    call: ToolCall, *, rules: ToolRules = NO_RULES, decision: dict | None = None, cancelled: bool = False
) -> Verdict:
    return judge(call, TOOLS, rules, [], decision, cancelled=cancelled)


def test_a_valid_call_runs_with_its_arguments_less_the_heartbeat_flag() -> None:
    verdict = _judge(ToolCall("c", "search", '{"query": "tea", "request_heartbeat": true}'))
    assert verdict == Verdict(args={"query": "tea"}, heartbeat=True)


def test_a_cancelled_run_runs_no_call() -> None:
    assert _judge(ToolCall("c", "search", "{}"), cancelled=True).error == CANCELLED_BEFORE_RUN


def test_a_denied_call_does_not_run_and_says_why() -> None:
    verdict = _judge(ToolCall("c", "search", "{}"), decision={"approve": False, "reason": "not now"})
    assert verdict.error == "Request to call tool denied by user. Reason: not now"
    assert _judge(ToolCall("c", "search", "{}"), decision={"approve": False}).error == (
        "Request to call tool denied by user."
    )


def test_an_unknown_tool_is_named_with_the_ones_there_are() -> None:
    error = _judge(ToolCall("c", "fly", "{}")).error
    assert error is not None and "'fly' does not exist" in error and "['search', 'send_message']" in error


def test_a_rule_violation_is_reported_and_keeps_the_loop_going() -> None:
    rules = ToolRules.parse([{"type": "run_first", "tool_name": "search"}])
    verdict = _judge(ToolCall("c", "send_message", "{}"), rules=rules)
    assert verdict.violation and verdict.heartbeat
    assert verdict.error is not None and verdict.error.startswith("[ToolConstraintError]")
    # a human approved the call: the rules do not overrule that
    assert _judge(ToolCall("c", "send_message", "{}"), rules=rules, decision={"approve": True}).error is None


@pytest.mark.parametrize("arguments", ["{not json", "[1, 2]"])
def test_bad_arguments_are_the_models_error(arguments: str) -> None:
    verdict = _judge(ToolCall("c", "search", arguments))
    assert verdict.error is not None and verdict.error.startswith("[ToolError] invalid JSON arguments for search")
    assert not verdict.heartbeat


@pytest.mark.parametrize(
    ("flag", "wanted"),
    [(True, True), ("true", True), (" True ", True), ("false", False), (False, False), (1, False), (None, False)],
)
def test_the_heartbeat_flag_means_yes_only_when_it_says_so(flag: object, wanted: bool) -> None:
    assert heartbeat_requested(flag) is wanted


def test_a_stored_result_reads_back_as_it_was_decided() -> None:
    call = ToolCall("c", "search", "{}")
    row = {
        "text": "found",
        "tool_returns": [{"status": "error"}],
        "metadata": {"heartbeat": True, "rule_violation": True},
    }
    assert stored_result(call, row) == CallResult(call, "found", "error", True, violation=True)
    assert stored_result(call, {"text": "", "tool_returns": None, "metadata": None}, "success").status == "success"


def test_calls_rejected_by_a_rule_do_not_count_for_the_rules() -> None:
    rows = [
        {"name": "search", "text": "a", "metadata": {}},
        {"name": "send_message", "text": "b", "metadata": {"rule_violation": True}},
        {"name": None, "text": None, "metadata": None},
    ]
    assert rule_history(rows) == [Call("search", "a"), Call("", "")]
