from __future__ import annotations

from o.agent.step.reply import add_usage, offer, plan_reply, refusal, stable_calls
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import AgentTool
from o.llm.types import ToolCall, Usage
from o.store.records import NextAction, StepStatus, StopReason
from tests.unit.agent.step.states import run

NO_RULES = ToolRules.parse([])


def _tool(name: str) -> AgentTool:
    return AgentTool(name, "", {"type": "object", "properties": {}})


def test_a_step_may_call_the_llm_unless_cancelled_past_max_steps_or_its_agent_is_gone() -> None:
    assert refusal(run(), 0, agent_exists=True) is None
    assert refusal(run(cancel_requested=True), 0, agent_exists=True) == (StopReason.CANCELLED, None)
    assert refusal(run(request={"max_steps": 2}), 2, agent_exists=True) == (StopReason.MAX_STEPS, None)
    assert refusal(run(request={}), 49, agent_exists=True) is None  # the default cap is 50
    assert refusal(run(), 0, agent_exists=False) == (StopReason.ERROR, "the agent was deleted")


def test_the_offer_follows_the_rules_and_pins_a_forced_tool() -> None:
    tools = [_tool("search"), _tool("send_message")]
    everything = offer(tools, NO_RULES, [])
    assert [t.name for t in everything.tools] == ["search", "send_message"]
    assert everything.tool_choice == "auto"
    first = offer(tools, ToolRules.parse([{"type": "run_first", "tool_name": "search"}]), [])
    assert [t.name for t in first.tools] == ["search"]
    assert first.tool_choice == "search"
    assert offer([], NO_RULES, []).tool_choice == "none"


def test_calls_without_an_id_or_with_a_repeated_one_get_stable_ids() -> None:
    requested = [ToolCall("", "a", "{}"), ToolCall("x", "b", "{}"), ToolCall("x", "c", "{}")]
    calls = stable_calls("step-1", requested)
    assert calls[1].id == "x"
    assert len({c.id for c in calls}) == 3
    assert calls == stable_calls("step-1", requested)  # the same on every replay
    assert calls[0].id != stable_calls("step-2", requested)[0].id


def test_a_reply_without_calls_ends_the_turn() -> None:
    plan = plan_reply("step-1", [], NO_RULES, set())
    assert (plan.status, plan.next_action, plan.stop_reason) == (
        StepStatus.COMPLETED,
        NextAction.DONE,
        StopReason.END_TURN,
    )
    assert plan.ends_turn


def test_a_reply_with_calls_goes_to_its_tools() -> None:
    plan = plan_reply("step-1", [ToolCall("c1", "search", "{}")], NO_RULES, {"search"})
    assert (plan.status, plan.next_action, plan.stop_reason) == (StepStatus.LLM_DONE, NextAction.TOOLS, None)
    assert plan.needs_approval == []


def test_an_offered_call_that_requires_approval_pauses_the_run() -> None:
    rules = ToolRules.parse([{"type": "requires_approval", "tool_name": "delete"}])
    calls = [ToolCall("c1", "search", "{}"), ToolCall("c2", "delete", "{}")]
    plan = plan_reply("step-1", calls, rules, {"search", "delete"})
    assert (plan.status, plan.next_action, plan.stop_reason) == (
        StepStatus.AWAITING_APPROVAL,
        NextAction.APPROVAL,
        StopReason.REQUIRES_APPROVAL,
    )
    assert plan.needs_approval == ["c2"]
    # a call of a tool that was not offered is not run at all, so nobody needs to approve it
    assert plan_reply("step-1", calls, rules, {"search"}).needs_approval == []


def test_usage_adds_up_over_steps() -> None:
    total = add_usage(
        {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12, "step_count": 1}, Usage(5, 1, 6), 1
    )
    assert total == {"prompt_tokens": 15, "completion_tokens": 3, "total_tokens": 18, "step_count": 2}
    assert add_usage({}, Usage(1, 1, 2))["step_count"] == 0


def test_history_matters_only_to_rules_that_look_at_it() -> None:
    rules = ToolRules.parse([{"type": "constrain_child_tools", "tool_name": "search", "children": ["fetch"]}])
    tools = [_tool("search"), _tool("fetch"), _tool("send_message")]
    assert [t.name for t in offer(tools, rules, [Call("search", "ok")]).tools] == ["fetch"]
