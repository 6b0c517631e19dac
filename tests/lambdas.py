"""The real Lambda handlers, run in this process as the Lambda service runs them.

moto runs no function code without Docker (see PLATFORM.md), so these pieces stand in for the
service: a fresh import of a handler module per test, with the function's environment (its module
scope is an execution environment's cold start); the context object the runtime hands a handler;
and moto's Lambda ``Invoke`` answered by handlers in this process, an unhandled exception reported
the way Lambda reports it (``X-Amz-Function-Error: Unhandled`` and an ``errorType``/``errorMessage``
body), so Step Functions' retries and catches see what they would see on AWS.
"""

from __future__ import annotations

import contextvars
import importlib
import io
import json
import sys
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities import parameters
from moto.awslambda_simple.models import LambdaSimpleBackend

from o.config import load_settings

REGION = "us-east-1"
ACCOUNT = "123456789012"

Handler = Callable[[dict[str, Any], Any], Any]

# The function whose code is running (set around each invocation): what an AWS call is attributed to.
running_as: contextvars.ContextVar[str | None] = contextvars.ContextVar("running_as", default=None)


@contextmanager
def acting_as(function: str) -> Iterator[None]:
    token = running_as.set(function)
    try:
        yield
    finally:
        running_as.reset(token)


@dataclass
class Context:
    """What the Lambda runtime hands a handler (the fields O's handlers and Powertools read)."""

    function_name: str
    function_version: str = "$LATEST"
    alias: str | None = None
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"
    region: str = REGION
    remaining_ms: int = 900_000

    @property
    def invoked_function_arn(self) -> str:
        qualifier = f":{self.alias}" if self.alias else ""
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.function_name}{qualifier}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def aws_credentials(monkeypatch: pytest.MonkeyPatch, region: str = REGION) -> None:
    """Credentials and a region for boto3 (moto accepts any)."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)


# an operator who lets agents name the protocol servers on 127.0.0.1 and lets calls reach that address
# (on AWS, loopback is otherwise refused)
LOOPBACK_OPERATOR = {"O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1", "O_OUTBOUND_ALLOW": "127.0.0.1"}


def service_environment(monkeypatch: pytest.MonkeyPatch, pg_url: str, **variables: str) -> None:
    """The environment the CDK gives O's service functions, on the test's Postgres, with an operator who lets
    agents name the protocol servers on 127.0.0.1 and lets calls reach that address (on AWS, loopback is
    otherwise refused)."""
    for name, value in {
        "O_DATABASE_URL": pg_url,
        "O_RUNTIME": "lambda",
        "O_RUN_MIGRATIONS": "false",
        **LOOPBACK_OPERATOR,
        **variables,
    }.items():
        monkeypatch.setenv(name, value)
    load_settings.cache_clear()


@contextmanager
def fresh_handler(module: str) -> Iterator[ModuleType]:
    """``functions.<name>.handler`` imported as a new execution environment imports it; its database
    connection is closed and the module forgotten afterwards."""
    load_settings.cache_clear()
    # a new execution environment starts with empty caches (Powertools keeps secrets process-wide)
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    sys.modules.pop(module, None)
    handler = importlib.import_module(module)
    try:
        yield handler
    finally:
        runtime = getattr(handler, "_runtime", None)
        if runtime is not None:
            runtime.close()
        sys.modules.pop(module, None)
        load_settings.cache_clear()


def unhandled(exc: BaseException, response_headers: dict[str, Any]) -> bytes:
    """What Lambda answers for an exception the handler lets escape."""
    response_headers["x-amz-function-error"] = "Unhandled"
    return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}).encode()


@dataclass
class LambdaService:
    """moto's Lambda ``Invoke`` answered by handlers in this process (install with :meth:`install`)."""

    handlers: dict[str, tuple[Handler, Context]] = field(default_factory=dict)
    # every event each function was invoked with, in order
    events: list[dict[str, Any]] = field(default_factory=list)
    # the next invocation whose event has one of these actions crashes (a Lambda dying mid-task)
    crash_on: set[str] = field(default_factory=set)

    def serve(self, function_name: str, handler: Handler, context: Context | None = None) -> None:
        self.handlers[function_name] = (handler, context or Context(function_name))

    def install(self, monkeypatch: pytest.MonkeyPatch) -> LambdaService:
        service = self

        def invoke(
            backend: LambdaSimpleBackend,
            function_name: str,
            qualifier: str | None,
            body: Any,
            headers: Any,
            response_headers: dict[str, Any],
        ) -> bytes:
            # as moto does: an unknown function (or version) is a ResourceNotFoundException
            function = backend.get_function(function_name, qualifier)
            return service.invoke(function.function_name, json.loads(body), response_headers)

        monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
        return self

    def invoke(self, function_name: str, event: dict[str, Any], response_headers: dict[str, Any]) -> bytes:
        handler, context = self.handlers[function_name]
        self.events.append(event)
        try:
            if event.get("action") in self.crash_on:
                self.crash_on.discard(event["action"])
                raise RuntimeError(f"simulated crash of the {event['action']} task")
            with acting_as(function_name):
                return json.dumps(handler(event, context)).encode()
        except Exception as exc:
            return unhandled(exc, response_headers)


def stub_code(path: str = "handler.py") -> bytes:
    """A deployment package: moto stores the zip but never runs it (the handlers run in this process)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(path, "# built by the CDK build; run in-process by tests.lambdas\n")
    return archive.getvalue()


def create_function(name: str, handler: str, *, environment: dict[str, str] | None = None, region: str = REGION) -> str:
    """A function (and a role for it) in moto's Lambda; its ARN."""
    iam = boto3.client("iam", region_name=region)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    try:
        role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName=f"{name}-role")["Role"]["Arn"]
    function: dict[str, Any] = boto3.client("lambda", region_name=region).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=handler,
        Code={"ZipFile": stub_code()},
        Environment={"Variables": environment or {}},
    )
    return str(function["FunctionArn"])
