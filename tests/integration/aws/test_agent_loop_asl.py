"""The synthesized agent-loop ASL itself, executed by moto: routing, approval pause, retries, the
failure path (Catch → MarkFailed → Fail), continue-as-new.

The agent-step function here is a scripted Python function that answers each
invocation per the contract in infra/agent_loop.py, so each test fixes exactly which
``next`` the state machine sees; the real handler drives the same machine in
test_agent_loop_state_machine.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.aws.agent_loop_moto import Crash, agent_loop, synthesized_definition


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return synthesized_definition(tmp_path_factory.mktemp("synth"), {"o:iterationCap": 3})


def scripted(answers: dict[tuple[str, int], str]) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Answer (action, iteration) with a ``next``; a step moves the iteration on by one."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event["action"] == "await_approval":
            return {"stored": True}  # the token is kept; the answer comes with SendTaskSuccess
        if event["action"] == "fail":
            return {"run_id": event["run_id"], "iteration": event["iteration"], "next": "failed",
                    "stop_reason": "error", "conversation_id": event["conversation_id"]}  # fmt: skip
        iteration = event["iteration"] + (1 if event["action"] == "step" else 0)
        return {
            "run_id": event["run_id"],
            "iteration": iteration,
            "conversation_id": event["conversation_id"],
            "next": answers[(event["action"], event["iteration"])],
            "stop_reason": None,
        }

    return handler


def test_step_tools_step_done(parts: list[Any]) -> None:
    answers = {("step", 0): "tools", ("tools", 1): "step", ("step", 1): "done"}
    with agent_loop(parts, scripted(answers)) as loop:
        execution = loop.start("run-1", conversation_id="conv-1")
        assert loop.wait(execution)["status"] == "SUCCEEDED"
        assert [(c["action"], c["iteration"]) for c in loop.calls] == [("step", 0), ("tools", 1), ("step", 1)]
        # Only ids and counters travel: nothing else reaches the handler.
        assert all(set(c) == {"action", "run_id", "iteration", "conversation_id"} for c in loop.calls)
        assert all((c["run_id"], c["conversation_id"]) == ("run-1", "conv-1") for c in loop.calls)


def test_approval_pauses_until_send_task_success(parts: list[Any]) -> None:
    answers = {("step", 0): "approval", ("step", 1): "done"}
    with agent_loop(parts, scripted(answers)) as loop:
        execution = loop.start("run-2")
        pause = loop.wait_for_call(lambda c: c["action"] == "await_approval")
        assert pause["task_token"]
        assert loop.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
        loop.sfn.send_task_success(
            taskToken=pause["task_token"],
            output=json.dumps({"run_id": "run-2", "iteration": 1, "conversation_id": None, "next": "step"}),
        )
        assert loop.wait(execution)["status"] == "SUCCEEDED"
        assert [c["action"] for c in loop.calls] == ["step", "await_approval", "step"]


def test_failed_and_unknown_next_fail_the_execution(parts: list[Any]) -> None:
    with agent_loop(parts, scripted({("step", 0): "failed"})) as loop:
        failed = loop.wait(loop.start("run-3"))
        assert failed["status"] == "FAILED"
        assert failed.get("error") == "AgentStepFailed"
    with agent_loop(parts, scripted({("step", 0): "sideways"})) as loop:
        unknown = loop.wait(loop.start("run-4"))
        assert unknown["status"] == "FAILED"
        assert unknown.get("error") == "UnknownNext"


def test_a_lambda_that_dies_is_invoked_again(parts: list[Any]) -> None:
    crashes: list[str] = []

    def die_once(event: dict[str, Any]) -> None:
        if not crashes:
            crashes.append(event["action"])
            raise Crash("Sandbox.Timedout")

    with agent_loop(parts, scripted({("step", 0): "done"})) as loop:
        loop.before = die_once
        assert loop.wait(loop.start("run-5"))["status"] == "SUCCEEDED"
        assert [c["action"] for c in loop.calls] == ["step", "step"]
        failures = [e for e in loop.history(loop.executions()[0]["executionArn"]) if e["type"] == "TaskFailed"]
        assert len(failures) == 1


def test_a_code_error_is_not_retried_and_marks_the_run_failed(parts: list[Any]) -> None:
    marked: list[int] = []

    def bug(event: dict[str, Any]) -> None:
        if event["action"] == "tools":
            raise Crash("KeyError", "a bug in the handler")
        # MarkFailed is retried on Lambda service errors like the other tasks.
        if event["action"] == "fail" and not marked:
            marked.append(1)
            raise Crash("Lambda.ServiceException", "Lambda was unable to run the function")

    with agent_loop(parts, scripted({("step", 0): "tools"})) as loop:
        loop.before = bug
        execution = loop.wait(loop.start("run-6"))
        assert execution["status"] == "FAILED"
        assert execution.get("error") == "AgentRunFailed"
        assert [c["action"] for c in loop.calls] == ["step", "tools", "fail", "fail"]
        fail = loop.calls[-1]
        assert (fail["run_id"], fail["iteration"]) == ("run-6", 1)
        assert fail["error"]["Error"] == "KeyError"
        assert "a bug in the handler" in fail["error"]["Cause"]


def test_the_loop_continues_as_a_new_execution_at_the_cap(parts: list[Any]) -> None:
    # Cap 3: steps at iterations 0, 1, 2 run in the first execution; the one that reaches 3
    # hands the run over to a new execution, whose first step (iteration 0 again) finishes it.
    calls: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append(event["iteration"])
        return {
            "run_id": event["run_id"],
            "iteration": event["iteration"] + 1,
            "conversation_id": event["conversation_id"],
            "next": "step" if len(calls) <= 3 else "done",
            "stop_reason": None if len(calls) <= 3 else "end_turn",
        }

    with agent_loop(parts, handler) as loop:
        first = loop.start("run-7", name="first", conversation_id="conv-7")
        assert loop.wait(first)["status"] == "SUCCEEDED"
        loop.wait_for_call(lambda c: len(calls) == 4)
        executions = [e for e in loop.executions() if e["executionArn"] != first]
        assert len(executions) == 1
        second_arn = executions[0]["executionArn"]
        assert loop.wait(second_arn)["status"] == "SUCCEEDED"
        assert calls == [0, 1, 2, 0]
        started_with = json.loads(loop.sfn.describe_execution(executionArn=second_arn)["input"])
        assert started_with["run_id"] == "run-7"
        assert started_with["iteration"] == 0
        assert started_with["conversation_id"] == "conv-7"  # the conversation goes on with the run
        assert started_with["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == first


def test_a_mark_failed_that_fails_is_retried_until_the_run_is_marked(parts: list[Any]) -> None:
    # The fail action is the last chance to tell the run's clients: any error (here the database
    # being away, a code error as Lambda reports it) is retried, not only Lambda's own.
    attempts: list[str] = []

    def bug_then_database_away(event: dict[str, Any]) -> None:
        if event["action"] == "step":
            raise Crash("KeyError", "a bug in the handler")
        if event["action"] == "fail":
            attempts.append("fail")
            if len(attempts) <= 2:
                raise Crash("DatabaseUnavailable", "the database is unavailable")

    with agent_loop(parts, scripted({})) as loop:
        loop.before = bug_then_database_away
        execution = loop.wait(loop.start("run-7"), timeout=60)
        assert execution["status"] == "FAILED"
        assert execution.get("error") == "AgentRunFailed"
        assert [c["action"] for c in loop.calls] == ["step", "fail", "fail", "fail"]
        assert all(c["error"]["Error"] == "KeyError" for c in loop.calls[1:])
