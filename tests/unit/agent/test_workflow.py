"""How a Step Functions error caught by the agent loop reads on the failed run."""

from __future__ import annotations

import json

from o.agent.workflow import CAUSE_CHARS, workflow_error_text


def test_a_lambda_json_cause_reads_as_type_and_message() -> None:
    cause = json.dumps({"errorType": "KeyError", "errorMessage": "'agent'", "stackTrace": ["  File x"] * 50})
    assert workflow_error_text({"Error": "States.TaskFailed", "Cause": cause}) == "States.TaskFailed: KeyError: 'agent'"
    # The type is not said twice when it is the error's own name.
    timed_out = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 300.00 seconds"})
    assert workflow_error_text({"Error": "Sandbox.Timedout", "Cause": timed_out}) == (
        "Sandbox.Timedout: Task timed out after 300.00 seconds"
    )


def test_plain_missing_and_long_causes() -> None:
    assert workflow_error_text({"Error": "Lambda.Unknown", "Cause": "The cause could not be determined"}) == (
        "Lambda.Unknown: The cause could not be determined"
    )
    assert workflow_error_text({"Error": "States.Timeout"}).startswith("States.Timeout: the state ran past its timeout")
    assert workflow_error_text({"Error": "States.Runtime", "Cause": None}) == "States.Runtime"
    assert workflow_error_text({}) == "an unnamed error"
    long = workflow_error_text({"Error": "E", "Cause": "x" * 50_000})
    assert len(long) == CAUSE_CHARS and long.endswith("…")
