from __future__ import annotations

from o.agent.step.calls import CallResult
from o.agent.step.reply import plan_reply
from o.agent.step.rows import reply_id, reply_message, step_row, tool_message
from o.agent.tool_rules import ToolRules
from o.llm.types import ToolCall, Usage
from o.store.records import NextAction, StepStatus, StopReason
from tests.unit.agent.step.states import NOW, run

RULES = ToolRules.parse([{"type": "requires_approval", "tool_name": "delete"}])


def test_a_reply_without_calls_is_stored_completed() -> None:
    plan = plan_reply("step-1", [], RULES, set())
    row = step_row(run(), "step-1", 0, plan, model="m", usage=Usage(3, 2, 5), llm_ms=1.23456, now=NOW)
    assert row["status"] == StepStatus.COMPLETED
    assert (row["next_action"], row["stop_reason"], row["completed_at"]) == (
        NextAction.DONE,
        StopReason.END_TURN,
        NOW,
    )
    assert row["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "llm_ms": 1.235}
    assert row["message_id"] == reply_id("step-1")
    message = reply_message(run(), "step-1", plan, "Hello")
    assert message["metadata"] == {"kind": "reply"}
    assert message["content"] == [{"type": "text", "text": "Hello"}]
    assert message["tool_calls"] is None


def test_a_reply_with_calls_leaves_the_step_open_and_names_the_calls_awaiting_approval() -> None:
    plan = plan_reply("step-1", [ToolCall("c1", "delete", '{"id": 1}')], RULES, {"delete"})
    row = step_row(run(), "step-1", 0, plan, model="m", usage=Usage(), llm_ms=0.0, now=NOW)
    assert (row["next_action"], row["stop_reason"], row["completed_at"]) == (None, None, None)
    assert row["tool_calls"] == [
        {"id": "c1", "type": "function", "function": {"name": "delete", "arguments": '{"id": 1}'}}
    ]
    message = reply_message(run(), "step-1", plan, None)
    assert message["metadata"] == {"requires_approval": ["c1"]}
    assert (message["content"], message["text"]) == ([], "")


def test_a_tool_result_keeps_what_the_loop_decides_on() -> None:
    result = CallResult(ToolCall("c1", "search", "{}"), "found", "success", True, stdout="out", violation=True)
    message = tool_message(run(), "step-1", 2, result)
    assert message["step_position"] == 2
    assert message["metadata"] == {"heartbeat": True, "rule_violation": True}
    assert message["tool_returns"] == [
        {"tool_call_id": "c1", "status": "success", "func_response": "found", "stdout": ["out"], "stderr": None}
    ]
    # the same call at the same position is the same message on every replay
    assert message["id"] == tool_message(run(), "step-1", 2, result)["id"]
    assert message["id"] != tool_message(run(), "step-1", 1, result)["id"]
