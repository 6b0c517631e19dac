"""The AWS :class:`~o.agent.runner.Executions`: a Step Functions state machine that runs a loop.

Both loops that run on AWS (the agent loop and the evolution loop) start executions of their state
machine here, and the agent loop releases an execution waiting on ``.waitForTaskToken`` (a human's
approval) with ``SendTaskSuccess``.
"""

from __future__ import annotations

import json
from typing import Any

import boto3


class StateMachine:
    """``arn`` may be unknown to a function the state machine itself invokes (CloudFormation cannot give a
    function the ARN of a machine that references it): such a function only answers task tokens."""

    def __init__(self, arn: str | None, client: Any | None = None) -> None:
        self.arn = arn
        self._client = client

    @property
    def client(self) -> Any:
        # created on first use: a process that only reads never pays for the client
        if self._client is None:
            self._client = boto3.client("stepfunctions")
        return self._client

    def start(self, name: str, payload: dict[str, Any]) -> str | None:
        """Start an execution named ``name``; its ARN, or None when one of that name exists already
        (names are the idempotency key: a retried start cannot run the loop twice)."""
        if self.arn is None:
            raise RuntimeError("this process was given no state machine to start (O_AGENT_STATE_MACHINE_ARN)")
        try:
            started = self.client.start_execution(stateMachineArn=self.arn, name=name, input=json.dumps(payload))
        except self.client.exceptions.ExecutionAlreadyExists:
            return None
        return str(started["executionArn"])

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        self.client.send_task_success(taskToken=token, output=json.dumps(output))
