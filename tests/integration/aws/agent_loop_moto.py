"""Run the synthesized agent-loop state machine under moto, with Lambda invokes dispatched in-process.

moto executes the ASL (``execute_state_machine``) and answers the state machine's
``lambda:invoke`` through its Lambda backend; that backend's ``invoke`` is replaced by a
dispatcher that calls Python handlers in this process (allowed by PLATFORM.md: moto does
not run function code without Docker). The definition is taken from the CDK template
of the real app, with the agent-step alias reference replaced by the alias moto holds.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.models import StateMachine as MotoStateMachine
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn import (
    StateTaskServiceSfn,
)

from tests.infra.synth import synth_template
from tests.lambdas import REGION, Context, stub_code

FUNCTION = "O-agent-step"
MACHINE = "O-agent-loop"

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def synthesized_definition(tmp: Path, context: dict[str, Any] | None = None) -> list[Any]:
    """The state machine's ``Fn::Join`` parts from a real synth of the app (cdk-nag off: tested in tests/infra)."""
    template = synth_template(tmp, **(context or {}))
    (machine,) = [
        r for r in template["Resources"].values()
        if r["Type"] == "AWS::StepFunctions::StateMachine"
        and r["Properties"]["StateMachineName"].endswith("agent-loop")
    ]  # fmt: skip
    parts: list[Any] = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return parts


def render(parts: list[Any], function_arn: str) -> str:
    """The ASL text with the one CloudFormation reference (the agent-step function, whose ``:live``
    alias the definition names) resolved."""
    refs = {json.dumps(p, sort_keys=True) for p in parts if not isinstance(p, str)}
    assert len(refs) == 1 and "AgentStepFunction" in next(iter(refs)), refs
    return "".join(p if isinstance(p, str) else function_arn for p in parts)


# what the runtime hands the agent-step handler when the loop invokes its live alias
STEP_CONTEXT = Context(FUNCTION, function_version="1", alias="live", remaining_ms=300_000)


class Crash(Exception):
    """Raised by a dispatch hook to make the invocation fail the way a dying Lambda does."""

    def __init__(self, error_type: str = "Sandbox.Timedout", message: str = "Task timed out") -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass
class Loop:
    sfn: Any
    machine_arn: str
    alias_arn: str
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: list[Exception] = field(default_factory=list)
    # Called with the event before the handler runs and with (event, result) after; may raise Crash.
    before: Callable[[dict[str, Any]], None] | None = None
    after: Callable[[dict[str, Any], dict[str, Any]], None] | None = None

    def start(self, run_id: str, name: str | None = None, conversation_id: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "stateMachineArn": self.machine_arn,
            "input": json.dumps({"run_id": run_id, "iteration": 0, "conversation_id": conversation_id}),
        }
        if name:
            kwargs["name"] = name
        return str(self.sfn.start_execution(**kwargs)["executionArn"])

    def wait(self, execution_arn: str, until: tuple[str, ...] = ("SUCCEEDED", "FAILED", "ABORTED", "TIMED_OUT"),
             timeout: float = 30.0) -> dict[str, Any]:  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] in until:
                return dict(described)
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution still {described['status']} after {timeout} s")
            time.sleep(0.02)

    def wait_for_call(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for call in list(self.calls):
                if predicate(call):
                    return call
            time.sleep(0.02)
        raise TimeoutError("the expected invocation did not happen")

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return list(self.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"])

    def executions(self) -> list[dict[str, Any]]:
        return list(self.sfn.list_executions(stateMachineArn=self.machine_arn)["executions"])


@contextmanager
def agent_loop(parts: list[Any], handler: Handler) -> Iterator[Loop]:
    """The synthesized agent loop in moto, its agent-step alias dispatched to ``handler``."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        iam = boto3.client("iam", region_name=REGION)
        role = iam.create_role(
            RoleName="o-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        lam = boto3.client("lambda", region_name=REGION)
        lam.create_function(
            FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="functions.agent_step.handler.handler",
            Code={"ZipFile": stub_code()}, Architectures=["arm64"],
        )  # fmt: skip
        function_arn = lam.get_function(FunctionName=FUNCTION)["Configuration"]["FunctionArn"]
        version = lam.publish_version(FunctionName=FUNCTION)["Version"]
        alias_arn = lam.create_alias(FunctionName=FUNCTION, Name="live", FunctionVersion=version)["AliasArn"]
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine_arn = sfn.create_state_machine(
            name=MACHINE, definition=render(parts, function_arn), roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        loop = Loop(sfn=sfn, machine_arn=machine_arn, alias_arn=alias_arn)
        locks: dict[str, threading.Lock] = {}
        guard = threading.Lock()

        def environment(run_id: str) -> threading.Lock:
            with guard:
                return locks.setdefault(run_id, threading.Lock())

        def dispatch(self: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                     response_headers: Any) -> bytes:  # fmt: skip
            assert function_name in (alias_arn, FUNCTION), f"the loop must call the live alias, not {function_name}"
            event = json.loads(body)
            loop.calls.append(event)
            try:
                # One execution environment per run: invocations of one run never overlap in Lambda
                # either, and different runs' do (each its own environment).
                with environment(str(event.get("run_id"))):
                    if loop.before:
                        loop.before(event)
                    result = handler(event, STEP_CONTEXT)
                    if loop.after:
                        loop.after(event, result)
            except Crash as crash:
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": crash.error_type, "errorMessage": str(crash)}).encode()
            except Exception as exc:
                # What Lambda answers for an exception the handler lets escape.
                loop.errors.append(exc)
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()
            return json.dumps(result).encode()

        with (
            mock.patch.object(LambdaSimpleBackend, "invoke", dispatch),
            mock.patch.object(StateTaskServiceSfn, "_normalise_parameters", _sfn_parameters_as_boto_names),
            mock.patch.object(MotoStateMachine, "__deepcopy__", _copy_without_executions, create=True),
        ):
            yield loop


_original_sfn_normalise = StateTaskServiceSfn._normalise_parameters


def _sfn_parameters_as_boto_names(self: Any, parameters: dict[str, Any], *args: Any, **kwargs: Any) -> None:
    """Fill a moto 5.2 gap: its interpreter hands the ASL's ``StateMachineArn``/``Input``/``Name``
    to boto3 unchanged, and boto3's Step Functions client only knows the camelCase names, so
    ``arn:aws:states:::states:startExecution`` fails with KeyError 'StateMachineArn'. Real Step
    Functions takes the PascalCase names the ASL uses."""
    _original_sfn_normalise(self, parameters, *args, **kwargs)
    for name in ("StateMachineArn", "Input", "Name", "TraceHeader"):
        if name in parameters:
            parameters[name[0].lower() + name[1:]] = parameters.pop(name)


def _copy_without_executions(self: Any, memo: dict[int, Any]) -> Any:
    """Fill a second moto 5.2 gap: ``start_execution`` deep-copies the state machine, its list of
    executions included, and a running execution holds locks that cannot be copied, so a machine
    cannot start itself (continue-as-new) while running. The copy needs no executions."""
    cls = type(self)
    clone = cls.__new__(cls)
    memo[id(self)] = clone
    for key, value in self.__dict__.items():
        setattr(clone, key, [] if key == "executions" else copy.deepcopy(value, memo))
    return clone
