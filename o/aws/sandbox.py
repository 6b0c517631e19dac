"""The AWS :class:`~o.tools.sandbox.base.Sandbox`: run a tool call in the dedicated sandbox Lambda.

The sandbox function has its own role (its logs only), no VPC attachment and so no
route to the database, and its own timeout and memory. Inside it the same runner as
the local sandbox confines the tool further. A tool call is not idempotent, so the
client never retries: a lost answer is reported to the agent as an error instead.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from o.tools.sandbox.base import ToolInvocation, ToolResult, truncate


class LambdaSandbox:
    def __init__(
        self,
        function_name: str,
        *,
        client: Any | None = None,
        region_name: str | None = None,
        max_wall_seconds: float = 60.0,
    ) -> None:
        self.function_name = function_name
        self._client = client
        self._region_name = region_name
        self._read_timeout = int(max_wall_seconds) + 15

    @property
    def client(self) -> Any:
        # made at the first tool call, not at start-up: most requests of a cold start call no tool
        if self._client is None:
            self._client = boto3.client(
                "lambda",
                region_name=self._region_name,
                config=Config(connect_timeout=5, read_timeout=self._read_timeout, retries={"total_max_attempts": 1}),
            )
        return self._client

    def run(self, invocation: ToolInvocation) -> ToolResult:
        started = time.monotonic()
        try:
            response = self.client.invoke(
                FunctionName=self.function_name,
                InvocationType="RequestResponse",
                Payload=json.dumps(invocation.to_dict()).encode(),
            )
            body = response["Payload"].read()
        except (BotoCoreError, ClientError) as exc:
            return _error(invocation, started, f"the sandbox function could not be invoked: {exc}")
        except (TypeError, ValueError) as exc:
            return _error(invocation, started, f"arguments are not JSON: {exc}")

        if response.get("FunctionError"):
            detail = _error_detail(body)
            if "timed out" in detail:
                return _error(invocation, started, f"the sandbox function timed out: {detail}", "timeout")
            return _error(invocation, started, f"the sandbox function failed: {detail}")
        try:
            result = ToolResult.from_dict(json.loads(body))
        except (ValueError, TypeError, KeyError) as exc:
            return _error(invocation, started, f"the sandbox function answered something unreadable: {exc}")
        # the duration the agent sees includes the invoke round trip
        return ToolResult(
            status=result.status,
            func_return=truncate(result.func_return, invocation.return_char_limit),
            stdout=result.stdout,
            stderr=result.stderr,
            message=result.message,
            duration_ms=(time.monotonic() - started) * 1000,
            isolation=("lambda", *result.isolation),
        )


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:500].decode("utf-8", errors="replace")
    if isinstance(data, dict):
        return f"{data.get('errorType', 'Error')}: {data.get('errorMessage', '')}"
    return str(data)[:500]


def _error(invocation: ToolInvocation, started: float, message: str, status: str = "error") -> ToolResult:
    return ToolResult(
        status=status,  # type: ignore[arg-type]
        func_return=truncate(
            f"Error executing tool {invocation.function_name}: {message}", invocation.return_char_limit
        ),
        message=message,
        duration_ms=(time.monotonic() - started) * 1000,
    )
