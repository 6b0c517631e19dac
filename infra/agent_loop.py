"""The agent-loop state machine: a Standard workflow in JSONPath ASL driving the agent-step Lambda.

Contract with ``functions/agent_step/handler.py`` (kept exactly; the handler implements it):

- execution input ``{"run_id": str, "iteration": 0, "conversation_id": str|null}`` (the run's
  conversation of its agent; null: the agent's own history);
- every invocation gets ``{"action": "step"|"tools"|"await_approval", "run_id", "iteration",
  "conversation_id", "task_token"?}`` and returns ``{"run_id", "iteration", "conversation_id",
  "next": "step"|"tools"|"approval"|"done"|"failed", "stop_reason": str|null}``;
- an approval pause ends when the API calls ``SendTaskSuccess`` with
  ``{"run_id", "iteration", "conversation_id", "next": "step"}``;
- an error a task's retries do not cure (a Lambda that keeps crashing, an approval wait past its
  timeout, a bug) is caught into ``$.error`` and sent as ``{"action": "fail", "run_id",
  "iteration", "error": {"Error", "Cause"}}``, which marks the run failed in Postgres (a client
  polling the run learns why), before the execution fails with ``AgentRunFailed``.

Only ids travel through the workflow (the transcript lives in Postgres), so payloads
stay far below the 256 KiB limit. JSONPath rather than JSONata so moto can execute the
very definition deployed here in tests.

Iteration cap: a Standard execution may hold 25,000 history events. One Task state
costs 5 events (StateEntered, Scheduled, Started, Succeeded, StateExited) and the
Choice after it 2, so one iteration that runs a step and then tools costs 14; a retry
adds 3 more (Scheduled, Started, Failed). With a cap of 500 iterations the worst
ordinary execution is 500 x 14 = 7,000 events, and even one retry on every task
(+6 per iteration, 3,000) leaves it at 10,000, well under the limit, before the loop
continues as a new execution. A caught error ends the execution once, through MarkFailed
(5 events, 3 per retry, at most 8 + 10 retries) and the Fail state: under 70 more events.
"""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.service_function import acknowledge

DEFAULT_ITERATION_CAP = 500

# Errors of the Lambda service itself, not of O's code: always safe to retry.
LAMBDA_SERVICE_ERRORS = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
]
# The execution environment died mid-invocation (timeout, out of memory, crash). The step
# handler is idempotent per (run_id, iteration), so a retry finishes the interrupted work
# without writing its messages twice; a few attempts, then the execution fails.
LAMBDA_CRASH_ERRORS = ["Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError"]


def _retry() -> list[dict[str, Any]]:
    return [
        {
            "ErrorEquals": LAMBDA_SERVICE_ERRORS,
            "IntervalSeconds": 1,
            "MaxAttempts": 6,
            "BackoffRate": 2.0,
            "MaxDelaySeconds": 30,
            "JitterStrategy": "FULL",
        },
        {
            "ErrorEquals": LAMBDA_CRASH_ERRORS,
            "IntervalSeconds": 2,
            "MaxAttempts": 2,
            "BackoffRate": 2.0,
        },
    ]


# After the retries above: whatever still fails marks the run failed instead of leaving it "running".
# ResultPath keeps the state's input (run_id, iteration) and adds the error beside it.
CATCH_ALL = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}]

# MarkFailed is the last chance to tell the run's clients it failed: past it the run would stay
# "running" for good. The fail action is idempotent, so any error is retried, for about six minutes
# (2 s doubling to 60 s): long enough for the database to come back from a restart or a failover.
MARK_FAILED_RETRY_ANY = {
    "ErrorEquals": ["States.ALL"],
    "IntervalSeconds": 2,
    "MaxAttempts": 10,
    "BackoffRate": 2.0,
    "MaxDelaySeconds": 60,
    "JitterStrategy": "FULL",
}


def _invoke(function_arn: str, action: str, next_state: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {
                "action": action,
                "run_id.$": "$.run_id",
                "iteration.$": "$.iteration",
                "conversation_id.$": "$.conversation_id",
            },
        },
        # Only the handler's answer travels on, never the invoke metadata.
        "ResultSelector": {
            "run_id.$": "$.Payload.run_id",
            "iteration.$": "$.Payload.iteration",
            "conversation_id.$": "$.Payload.conversation_id",
            "next.$": "$.Payload.next",
            "stop_reason.$": "$.Payload.stop_reason",
        },
        "Retry": _retry(),
        "Catch": CATCH_ALL,
        "Next": next_state,
    }


def agent_loop_definition(
    function_arn: str,
    *,
    iteration_cap: int = DEFAULT_ITERATION_CAP,
    approval_timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """The ASL document of the agent loop, invoking the agent-step function ``function_arn``."""
    if iteration_cap < 1:
        raise ValueError("iteration_cap must be at least 1")
    await_approval: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "Parameters": {
            "FunctionName": function_arn,
            "Payload": {
                "action": "await_approval",
                "run_id.$": "$.run_id",
                "iteration.$": "$.iteration",
                "conversation_id.$": "$.conversation_id",
                "task_token.$": "$$.Task.Token",
            },
        },
        # The output is what the API sends with SendTaskSuccess: {"run_id", "iteration", "conversation_id", "next"}.
        "Retry": _retry(),
        # Includes States.Timeout: a wait past approval_timeout_seconds fails the run.
        "Catch": CATCH_ALL,
        "Next": "Route",
    }
    if approval_timeout_seconds is not None:
        await_approval["TimeoutSeconds"] = approval_timeout_seconds
    return {
        "Comment": "O agent loop: step, tools, approval pauses; continues as a new execution at the cap",
        "StartAt": "Step",
        "States": {
            "Step": _invoke(function_arn, "step", "Route"),
            "Route": {
                "Type": "Choice",
                "Choices": [
                    {"Variable": "$.next", "StringEquals": "tools", "Next": "Tools"},
                    {"Variable": "$.next", "StringEquals": "approval", "Next": "AwaitApproval"},
                    {
                        "And": [
                            {"Variable": "$.next", "StringEquals": "step"},
                            {"Variable": "$.iteration", "NumericLessThan": iteration_cap},
                        ],
                        "Next": "Step",
                    },
                    {"Variable": "$.next", "StringEquals": "step", "Next": "ContinueAsNew"},
                    {"Variable": "$.next", "StringEquals": "done", "Next": "Done"},
                    {"Variable": "$.next", "StringEquals": "failed", "Next": "Failed"},
                ],
                "Default": "UnknownNext",
            },
            "Tools": _invoke(function_arn, "tools", "Route"),
            "AwaitApproval": await_approval,
            "ContinueAsNew": {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution",
                "Parameters": {
                    "StateMachineArn.$": "$$.StateMachine.Id",
                    "Input": {
                        "run_id.$": "$.run_id",
                        "iteration": 0,
                        "conversation_id.$": "$.conversation_id",
                        # Links the new execution to this one in the console and in X-Ray.
                        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                    },
                },
                "ResultPath": None,
                "Retry": [
                    {
                        "ErrorEquals": ["StepFunctions.SdkClientException", "States.TaskFailed"],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 4,
                        "BackoffRate": 2.0,
                    }
                ],
                "Catch": CATCH_ALL,
                "Next": "Done",
            },
            "MarkFailed": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {
                        "action": "fail",
                        "run_id.$": "$.run_id",
                        "iteration.$": "$.iteration",
                        "conversation_id.$": "$.conversation_id",
                        "error.$": "$.error",
                    },
                },
                "ResultPath": None,
                # The fail action is idempotent, so every retry of the other tasks is safe here, and
                # any other error is retried too (States.ALL last: Step Functions matches in order).
                "Retry": [*_retry(), MARK_FAILED_RETRY_ANY],
                "Next": "RunFailed",
            },
            "RunFailed": {
                "Type": "Fail",
                # A fixed name: a Fail state may not raise the caught error again when it is a States.* one
                # (States.Timeout), and the caught error is in the history and on the run already.
                "Error": "AgentRunFailed",
                "Cause": "an error the retries did not cure; the run was marked failed with it",
            },
            "Done": {"Type": "Succeed"},
            "Failed": {
                "Type": "Fail",
                "Error": "AgentStepFailed",
                "Cause": "the agent step reported the run as failed",
            },
            "UnknownNext": {
                "Type": "Fail",
                "Error": "UnknownNext",
                "Cause": "the agent step returned a value of next outside the contract",
            },
        },
    }


class AgentLoop(Construct):
    """The Standard state machine of the agent loop, invoking the agent-step ``live`` alias."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        step_alias: lambda_.IAlias,
        iteration_cap: int,
        log_retention: logs.RetentionDays,
        approval_timeout_seconds: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        # A fixed name lets the role allow StartExecution on this very machine (continue-as-new)
        # without a reference cycle between the machine and its role.
        self.state_machine_name = f"{stack.stack_name}-agent-loop"
        self.state_machine_arn_from_name = own_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        definition = agent_loop_definition(
            step_alias.function_arn, iteration_cap=iteration_cap, approval_timeout_seconds=approval_timeout_seconds
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            # json.dumps, not Stack.to_json_string: the latter drops the null of "ResultPath": null.
            # The alias ARN is a token inside a string, which CloudFormation resolves with Fn::Join.
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        step_alias.grant_invoke(self.state_machine)
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[own_arn])
        )
        self._acknowledge()

    def _acknowledge(self) -> None:
        acknowledge(
            self,
            ("AwsSolutions-IAM5[Resource::*]", "CloudWatch Logs delivery and X-Ray actions of Step Functions "
             "have no resource-level permissions"),
        )  # fmt: skip


def grant_task_response(grantee: iam.IGrantable) -> None:
    """SendTaskSuccess: releasing an execution that waits on a task token with the approval's decision
    (o/aws/stepfunctions.py calls nothing else: a denial is a decision too, so no SendTaskFailure, and no
    heartbeats).

    It has no resource-level permissions (IAM evaluates it against ``*``; the token itself names the
    execution), so a grant scoped to the state machine's ARN — what CDK's ``grant_task_response``
    writes — is refused on AWS (tests/integration/aws/test_iam.py).
    """
    iam.Grant.add_to_principal(grantee=grantee, actions=["states:SendTaskSuccess"], resource_arns=["*"])
    if isinstance(grantee, Construct):
        acknowledge(
            grantee,
            ("AwsSolutions-IAM5[Resource::*]", "Step Functions' task-token action SendTaskSuccess has no "
             "resource-level permissions; the token names the execution"),
        )  # fmt: skip
