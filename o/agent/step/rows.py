"""The rows a step writes: its step row, its assistant reply and its tool results (pure builders).

Their ids derive from ``(run_id, step_index)`` and positions, so a replay writes the same rows and
the store's unique keys turn the second write into a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from o.agent import transcript
from o.agent.step.calls import CallResult
from o.agent.step.reply import ReplyPlan, usage_of
from o.llm.types import Usage
from o.store.records import Run


def reply_id(step_id: str) -> str:
    return transcript.derived_id("message", step_id, 0)


def step_row(
    run: Run,
    step_id: str,
    iteration: int,
    plan: ReplyPlan,
    *,
    model: str,
    usage: Usage,
    llm_ms: float,
    now: datetime,
) -> dict[str, Any]:
    """The step as phase 1 stores it; a reply without calls completes it at once."""
    return {
        "id": step_id,
        "organization_id": run.organization_id,
        "agent_id": run.agent_id,
        "run_id": run.id,
        "step_index": iteration,
        "status": plan.status,
        "model": model,
        # time spent waiting on the provider, so framework overhead can be told apart from model latency
        "usage": {**usage_of(usage), "llm_ms": round(llm_ms, 3)},
        "tool_calls": transcript.stored_tool_calls(plan.calls),
        "message_id": reply_id(step_id),
        "next_action": plan.next_action if plan.ends_turn else None,
        "stop_reason": plan.stop_reason if plan.ends_turn else None,
        "completed_at": now if plan.ends_turn else None,
    }


def reply_message(run: Run, step_id: str, plan: ReplyPlan, content: str | None) -> dict[str, Any]:
    """The assistant message with the reply's text and calls (position 0 of the step)."""
    metadata: dict[str, Any] = {}
    if plan.needs_approval:
        metadata["requires_approval"] = plan.needs_approval
    if plan.ends_turn:
        metadata["kind"] = "reply"
    return {
        "id": reply_id(step_id),
        "organization_id": run.organization_id,
        "agent_id": run.agent_id,
        "role": "assistant",
        "content": [{"type": "text", "text": content}] if content else [],
        "text": content or "",
        "tool_calls": transcript.stored_tool_calls(plan.calls) or None,
        "step_id": step_id,
        "run_id": run.id,
        "step_position": 0,
        "metadata": metadata,
    }


def tool_message(run: Run, step_id: str, position: int, result: CallResult) -> dict[str, Any]:
    """A call's result (position 1, 2, ... of the step); ``metadata`` keeps what the loop decides on."""
    call = result.call
    return {
        "id": transcript.derived_id("message", step_id, position),
        "organization_id": run.organization_id,
        "agent_id": run.agent_id,
        "role": "tool",
        "content": [{"type": "text", "text": result.output}],
        "text": result.output,
        "name": call.name,
        "tool_call_id": call.id,
        "tool_returns": [
            {
                "tool_call_id": call.id,
                "status": result.status,
                "func_response": result.output,
                "stdout": [result.stdout] if result.stdout else None,
                "stderr": [result.stderr] if result.stderr else None,
            }
        ],
        "step_id": step_id,
        "run_id": run.id,
        "step_position": position,
        "metadata": {"heartbeat": result.heartbeat, **({"rule_violation": True} if result.violation else {})},
    }
