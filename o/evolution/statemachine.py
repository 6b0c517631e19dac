"""The evolution state machine (Standard workflow, JSONPath ASL so moto can execute the deployed document).

Contract with ``functions/evolution/handler.py``: every task sends ``{"action", "evolution_id"}``
(``"reason"`` too for ``rollback``) and gets back ``{"evolution_id", "status", "next", "bake_seconds"}``,
where ``next`` is the action now due or ``"done"``. The Choice states follow ``next``, so a retried
task that finds its work already recorded simply points the machine at the right state. The bake is
a Wait state (no Lambda runs while the canary takes traffic). Any task failure that survives the
retries goes to ``Rollback``: every failure path ends with the canary withdrawn and the decision
recorded. Payloads carry only ids.
"""

from __future__ import annotations

from typing import Any

LAMBDA_RETRY = [
    {
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException",
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 30,
        "JitterStrategy": "FULL",
    },
    {
        "ErrorEquals": ["Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError"],
        "IntervalSeconds": 2,
        "MaxAttempts": 2,
        "BackoffRate": 2.0,
    },
]
STEPS = ("Reflect", "Propose", "Shadow", "Gate", "Canary", "Evaluate", "Await")


def _task(function_arn: str, action: str) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": function_arn, "Payload": {"action": action, "evolution_id.$": "$.evolution_id"}},
        "ResultSelector": {
            "evolution_id.$": "$.Payload.evolution_id",
            "status.$": "$.Payload.status",
            "next.$": "$.Payload.next",
            "bake_seconds.$": "$.Payload.bake_seconds",
        },
        "Retry": LAMBDA_RETRY,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rollback"}],
        "Next": "Route",
    }


def evolution_definition(function_arn: str) -> dict[str, Any]:
    """The ASL document of the evolution loop, invoking the evolution function ``function_arn``."""
    route = [
        {"Variable": "$.next", "StringEquals": action, "Next": state}
        for action, state in (
            ("reflect", "Reflect"),
            ("propose", "Propose"),
            ("shadow", "Shadow"),
            ("gate", "Gate"),
            ("canary", "Canary"),
            ("evaluate", "Bake"),
            ("await", "AwaitApproval"),
            ("done", "Done"),
        )
    ]
    states: dict[str, Any] = {state: _task(function_arn, state.lower()) for state in STEPS}
    states.update(
        {
            "Route": {"Type": "Choice", "Choices": route, "Default": "Rollback"},
            # the canary takes live traffic while the machine waits; no Lambda runs meanwhile
            "Bake": {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "Evaluate"},
            # a gate that waits for the owner's approval: look again after a while (o.evolution.approval)
            "AwaitApproval": {"Type": "Wait", "SecondsPath": "$.bake_seconds", "Next": "Await"},
            "Rollback": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {
                        "action": "rollback",
                        "evolution_id.$": "$.evolution_id",
                        "reason": "the evolution workflow failed; rolled back",
                    },
                },
                "ResultSelector": {
                    "evolution_id.$": "$.Payload.evolution_id",
                    "status.$": "$.Payload.status",
                    "next.$": "$.Payload.next",
                },
                "Retry": [
                    *LAMBDA_RETRY,
                    {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 5, "MaxAttempts": 5, "BackoffRate": 2.0},
                ],
                "Next": "Done",
            },
            "Done": {"Type": "Succeed"},
        }
    )
    return {
        "Comment": "O self-evolution: reflect, propose, shadow, gate, canary, bake, evaluate; rollback on any failure",
        "StartAt": "Start",
        "States": {
            # an execution may start on an evolution at any status: route to the step that is due
            "Start": {
                "Type": "Pass",
                "Parameters": {"evolution_id.$": "$.evolution_id", "next": "reflect", "bake_seconds": 0},
                "Next": "Route",
            },
            **states,
        },
    }
