"""The sandbox Lambda: run one tool call with the same confined runner as local mode.

Its role allows only its own logs and it is attached to no VPC, so a tool that reads
the function's credentials or opens sockets reaches nothing of O's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger

from o.tools.sandbox.base import ToolInvocation
from o.tools.sandbox.local import LocalProcessSandbox, harden_host_process

logger = Logger(service="o-tool-sandbox")
harden_host_process()
_sandbox = LocalProcessSandbox(workdir_root=Path("/tmp"))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    invocation = ToolInvocation.from_dict(event)
    result = _sandbox.run(invocation)
    logger.info(
        "tool run",
        extra={"tool": invocation.function_name, "status": result.status,
               "duration_ms": round(result.duration_ms, 1), "isolation": list(result.isolation)},
    )
    return result.to_dict()
