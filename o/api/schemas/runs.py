"""Runs in Letta's shapes: ``Run``, ``LettaResponse`` and the stream's closing chunks."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from o.api.schemas.messages import Fields, LettaMessage, to_letta_list
from o.store.records import NextAction, Run, Step, StepStatus, StopReason


class LettaStopReason(BaseModel):
    message_type: Literal["stop_reason"] = "stop_reason"
    stop_reason: str


class LettaUsageStatistics(BaseModel):
    message_type: Literal["usage_statistics"] = "usage_statistics"
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    step_count: int
    run_ids: list[str]


class LettaResponse(BaseModel):
    """What a synchronous send answers: the messages the run produced, why it stopped, its usage."""

    messages: list[LettaMessage]
    stop_reason: LettaStopReason
    usage: LettaUsageStatistics


def usage_of(run: Run) -> dict[str, Any]:
    """Letta's ``LettaUsageStatistics``."""
    usage = run.usage
    return {
        "message_type": "usage_statistics",
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "total_tokens": int(usage.get("total_tokens", 0)),
        "step_count": int(usage.get("step_count", 0)),
        "run_ids": [run.id],
    }


def stop_reason_of(run: Run) -> dict[str, Any]:
    """Letta's ``LettaStopReason``."""
    reason = run.stop_reason
    if reason is None:
        reason = StopReason.REQUIRES_APPROVAL if run.next_action == NextAction.APPROVAL else StopReason.END_TURN
    return {"message_type": "stop_reason", "stop_reason": reason.value}


def letta_messages(run: Run, rows: list[dict[str, Any]]) -> list[Fields]:
    """A run's stored messages as the Letta messages its request asked for."""
    request = run.request
    items = to_letta_list(rows, use_assistant_message=request.get("use_assistant_message", True))
    wanted = request.get("include_return_message_types")
    return [i for i in items if i["message_type"] in wanted] if wanted else items


def letta_response(run: Run, rows: list[dict[str, Any]]) -> LettaResponse:
    """Letta's ``LettaResponse`` for the messages a run produced."""
    return LettaResponse.model_validate(
        {"messages": letta_messages(run, rows), "stop_reason": stop_reason_of(run), "usage": usage_of(run)}
    )


def run_object(run: Run) -> dict[str, Any]:
    """Letta's ``Run``."""
    request = run.request
    completed = run.completed_at
    duration = None
    if completed is not None:
        duration = int((completed - run.created_at).total_seconds() * 1e9)
    return {
        "id": run.id,
        "agent_id": run.agent_id,
        "status": run.status.value,
        "stop_reason": run.stop_reason.value if run.stop_reason is not None else None,
        "created_at": run.created_at,
        "completed_at": completed,
        "background": bool(run.metadata.get("background")),
        "metadata": run.metadata,
        "request_config": {
            "use_assistant_message": request.get("use_assistant_message", True),
            "assistant_message_tool_name": request.get("assistant_message_tool_name") or "send_message",
            "assistant_message_tool_kwarg": request.get("assistant_message_tool_kwarg") or "message",
            "include_return_message_types": request.get("include_return_message_types"),
        },
        "total_duration_ns": duration,
        "usage": usage_of(run),
        "error": run.error,
    }


def step_status(step: Step) -> str:
    """Letta's step status (pending, success, failed, cancelled) for O's finer-grained one: a step
    that is still between its model call and its tools (or waiting on an approval) is pending."""
    if step.status != StepStatus.COMPLETED:
        return "pending"
    if step.stop_reason == StopReason.CANCELLED:
        return "cancelled"
    return "failed" if step.error else "success"


def step_object(step: Step) -> dict[str, Any]:
    """Letta's ``Step``."""
    return {
        "id": step.id,
        "run_id": step.run_id,
        "agent_id": step.agent_id,
        "status": step_status(step),
        "model": step.model,
        "stop_reason": step.stop_reason.value if step.stop_reason is not None else None,
        "prompt_tokens": step.usage.get("prompt_tokens"),
        "completion_tokens": step.usage.get("completion_tokens"),
        "total_tokens": step.usage.get("total_tokens"),
        "error_data": {"message": step.error} if step.error else None,
        # O's own, kept from before: where the step sits in its run, and its times
        "step_index": step.step_index,
        "created_at": step.created_at,
        "completed_at": step.completed_at,
    }
