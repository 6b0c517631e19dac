"""The agent loop's durable state as typed records: a run (one agent turn) and its steps.

Both live in one module because they share their vocabulary (``NextAction``, ``StopReason``) and
:func:`o.store.runs.load_state` reads a run and a step in one statement: split over ``runs.py`` and
``steps.py`` the two repositories would import each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class RunStatus(StrEnum):
    """Where a run is from the client's side (Letta's ``Run.status``)."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class NextAction(StrEnum):
    """What the loop does next (``runs.next_action``); a completed step's decision uses step/done."""

    STEP = "step"
    TOOLS = "tools"
    APPROVAL = "approval"
    DONE = "done"
    FAILED = "failed"

    @property
    def ended(self) -> bool:
        return self in (NextAction.DONE, NextAction.FAILED)

    @property
    def due(self) -> bool:
        """A worker has something to do (as opposed to a run that ended or waits on a human)."""
        return self in (NextAction.STEP, NextAction.TOOLS)


class StepStatus(StrEnum):
    PENDING = "pending"  # the column's default; the loop never stores a step in this state
    LLM_DONE = "llm_done"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"


class StopReason(StrEnum):
    """Why a run stopped or paused (Letta's ``StopReasonType`` values that O produces)."""

    END_TURN = "end_turn"
    MAX_STEPS = "max_steps"
    CANCELLED = "cancelled"
    ERROR = "error"
    LLM_API_ERROR = "llm_api_error"
    REQUIRES_APPROVAL = "requires_approval"
    TOOL_RULE = "tool_rule"
    INVALID_TOOL_CALL = "invalid_tool_call"
    CONTEXT_WINDOW_OVERFLOW = "context_window_overflow_in_system_prompt"


@dataclass(frozen=True)
class Run:
    id: str
    organization_id: str
    agent_id: str
    status: RunStatus
    stop_reason: StopReason | None
    # the request's options (max_steps, the message shapes the client asked for)
    request: dict[str, Any]
    usage: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    # the step the run is working on (0-based), and what it does next
    iteration: int
    next_action: NextAction
    # a Step Functions execution waiting on an approval, and the execution driving the run
    task_token: str | None
    execution_arn: str | None
    cancel_requested: bool
    error: str | None
    # the conversation the run belongs to (None: the agent's own history)
    conversation_id: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Run:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            agent_id=row["agent_id"],
            status=RunStatus(row["status"]),
            stop_reason=_stop_reason(row["stop_reason"]),
            request=row["request"] or {},
            usage=row["usage"] or {},
            metadata=row["metadata"] or {},
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            completed_at=row["completed_at"],
            iteration=int(row["iteration"]),
            next_action=NextAction(row["next_action"]),
            task_token=row["task_token"],
            execution_arn=row["execution_arn"],
            cancel_requested=bool(row["cancel_requested"]),
            conversation_id=row.get("conversation_id"),
            error=row["error"],
        )


@dataclass(frozen=True)
class Step:
    id: str
    organization_id: str
    agent_id: str
    run_id: str
    step_index: int
    status: StepStatus
    model: str | None
    usage: dict[str, Any]
    stop_reason: StopReason | None
    error: str | None
    created_at: datetime
    completed_at: datetime | None
    # the calls the LLM asked for, as stored on the step's assistant message
    tool_calls: list[dict[str, Any]]
    # tool_call_id -> {"approve": bool, "reason": str | None} once a human decided
    approvals: dict[str, dict[str, Any]]
    # the loop's decision once the step completed: step (go on) or done
    next_action: NextAction | None
    message_id: str | None

    @classmethod
    def of(cls, row: dict[str, Any]) -> Step:
        """A step from its row, or from its JSON form (``to_jsonb``, where timestamps are text)."""
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            agent_id=row["agent_id"],
            run_id=row["run_id"],
            step_index=int(row["step_index"]),
            status=StepStatus(row["status"]),
            model=row["model"],
            usage=row["usage"] or {},
            stop_reason=_stop_reason(row["stop_reason"]),
            error=row["error"],
            created_at=_timestamp(row["created_at"]),
            completed_at=_timestamp(row["completed_at"]) if row["completed_at"] is not None else None,
            tool_calls=row["tool_calls"] or [],
            approvals=row["approvals"] or {},
            next_action=NextAction(row["next_action"]) if row["next_action"] is not None else None,
            message_id=row["message_id"],
        )


def _stop_reason(value: str | None) -> StopReason | None:
    return StopReason(value) if value is not None else None


def _timestamp(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
