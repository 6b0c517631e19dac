"""Phase 1's decisions (pure): whether the step may call the LLM, what it offers the model, and what
the model's reply means for the step."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from o.agent import transcript
from o.agent.step.continuation import max_steps
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import AgentTool
from o.llm.types import ToolCall, Usage
from o.store.records import NextAction, Run, StepStatus, StopReason

AGENT_DELETED = "the agent was deleted"


def refusal(run: Run, iteration: int, *, agent_exists: bool) -> tuple[StopReason, str | None] | None:
    """Why step ``iteration`` must end the run instead of calling the LLM (the stop reason and an
    error text), or None when it may go ahead."""
    if run.cancel_requested:
        return StopReason.CANCELLED, None
    if iteration >= max_steps(run):
        return StopReason.MAX_STEPS, None
    if not agent_exists:
        return StopReason.ERROR, AGENT_DELETED
    return None


@dataclass(frozen=True)
class Offer:
    """The tools the model may call this step, and the one a rule forces (None: the model chooses)."""

    tools: list[AgentTool]
    forced: str | None

    @property
    def tool_choice(self) -> str:
        return self.forced or ("auto" if self.tools else "none")


def offer(tools: list[AgentTool], rules: ToolRules, history: list[Call]) -> Offer:
    allowed = rules.allowed([t.name for t in tools], history)
    return Offer([t for t in tools if t.name in allowed], rules.forced(allowed, history))


def stable_calls(step_id: str, requested: Sequence[ToolCall]) -> list[ToolCall]:
    """The reply's calls with ids that are the same on every replay: a provider that sends no call id
    (or one already used in this reply) gets a stable one of ours."""
    seen: set[str] = set()
    calls = []
    for position, c in enumerate(requested, start=1):
        call_id = c.id if c.id and c.id not in seen else transcript.derived_id("call", step_id, position)
        seen.add(call_id)
        calls.append(ToolCall(call_id, c.name, c.arguments))
    return calls


@dataclass(frozen=True)
class ReplyPlan:
    """What the stored reply makes of the step: its calls, which of them wait for a human, the
    step's status and what the run does next."""

    calls: list[ToolCall]
    needs_approval: list[str]
    status: StepStatus
    next_action: NextAction
    stop_reason: StopReason | None

    @property
    def ends_turn(self) -> bool:
        """A reply without tool calls: the agent answered and the run is done."""
        return not self.calls


def plan_reply(step_id: str, requested: Sequence[ToolCall], rules: ToolRules, offered: Collection[str]) -> ReplyPlan:
    calls = stable_calls(step_id, requested)
    needs_approval = [c.id for c in calls if rules.requires_approval(c.name) and c.name in offered]
    if not calls:
        return ReplyPlan(calls, needs_approval, StepStatus.COMPLETED, NextAction.DONE, StopReason.END_TURN)
    if needs_approval:
        return ReplyPlan(
            calls, needs_approval, StepStatus.AWAITING_APPROVAL, NextAction.APPROVAL, StopReason.REQUIRES_APPROVAL
        )
    return ReplyPlan(calls, needs_approval, StepStatus.LLM_DONE, NextAction.TOOLS, None)


def usage_of(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def add_usage(total: dict[str, Any], usage: Usage, steps: int = 0) -> dict[str, Any]:
    """The run's usage with one more step's tokens counted."""
    return {
        "prompt_tokens": int(total.get("prompt_tokens", 0)) + usage.prompt_tokens,
        "completion_tokens": int(total.get("completion_tokens", 0)) + usage.completion_tokens,
        "total_tokens": int(total.get("total_tokens", 0)) + usage.total_tokens,
        "step_count": int(total.get("step_count", 0)) + steps,
    }
