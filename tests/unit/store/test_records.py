from __future__ import annotations

from datetime import UTC, datetime

import pytest

from o.store.records import NextAction, Run, RunStatus, Step, StepStatus, StopReason

CREATED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _step_row(**changes: object) -> dict[str, object]:
    return {
        "id": "step-1",
        "organization_id": "org-1",
        "agent_id": "agent-1",
        "run_id": "run-1",
        "step_index": 2,
        "status": "completed",
        "model": "m",
        "usage": None,
        "stop_reason": "end_turn",
        "error": None,
        "created_at": CREATED,
        "completed_at": None,
        "tool_calls": None,
        "approvals": None,
        "next_action": "done",
        "message_id": "message-1",
        **changes,
    }


def test_a_run_row_becomes_a_typed_record() -> None:
    run = Run.of(
        {
            "id": "run-1",
            "organization_id": "org-1",
            "agent_id": "agent-1",
            "status": "running",
            "stop_reason": None,
            "request": {"max_steps": 3},
            "usage": None,
            "metadata": None,
            "created_at": CREATED,
            "updated_at": CREATED,
            "completed_at": None,
            "iteration": 1,
            "next_action": "tools",
            "task_token": None,
            "execution_arn": None,
            "cancel_requested": False,
            "error": None,
        }
    )
    assert (run.status, run.next_action, run.stop_reason) == (RunStatus.RUNNING, NextAction.TOOLS, None)
    assert (run.usage, run.metadata) == ({}, {})
    assert run.next_action.due and not run.next_action.ended


def test_a_step_reads_the_same_from_its_row_and_from_its_json_form() -> None:
    from_row = Step.of(_step_row())
    from_json = Step.of(_step_row(created_at=CREATED.isoformat()))
    assert from_row == from_json
    assert (from_row.status, from_row.next_action, from_row.stop_reason) == (
        StepStatus.COMPLETED,
        NextAction.DONE,
        StopReason.END_TURN,
    )
    assert (from_row.tool_calls, from_row.approvals, from_row.usage) == ([], {}, {})


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError):
        Step.of(_step_row(status="sleeping"))


def test_statuses_compare_and_print_as_their_stored_text() -> None:
    assert NextAction.APPROVAL == "approval"
    assert f"{StopReason.MAX_STEPS}" == "max_steps"
    assert [a for a in NextAction if a.ended] == [NextAction.DONE, NextAction.FAILED]
