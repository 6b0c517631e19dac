"""Runs and steps as the store returns them, for decisions tested without a database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from o.store.records import NextAction, Run, RunStatus, Step, StepStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def run(**changes: Any) -> Run:
    base = Run(
        id="run-1",
        organization_id="org-1",
        agent_id="agent-1",
        status=RunStatus.RUNNING,
        stop_reason=None,
        request={"max_steps": 5},
        usage={},
        metadata={},
        created_at=NOW,
        updated_at=NOW,
        completed_at=None,
        iteration=0,
        next_action=NextAction.STEP,
        task_token=None,
        execution_arn=None,
        cancel_requested=False,
        error=None,
    )
    return replace(base, **changes)


def step(**changes: Any) -> Step:
    base = Step(
        id="step-1",
        organization_id="org-1",
        agent_id="agent-1",
        run_id="run-1",
        step_index=0,
        status=StepStatus.LLM_DONE,
        model="gpt-4o-mini",
        usage={},
        stop_reason=None,
        error=None,
        created_at=NOW,
        completed_at=None,
        tool_calls=[],
        approvals={},
        next_action=None,
        message_id="message-1",
    )
    return replace(base, **changes)


def stored_call(call_id: str, name: str = "search", arguments: str = "{}") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
