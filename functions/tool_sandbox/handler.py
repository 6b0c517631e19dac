"""The sandbox Lambda: run one tool call with the same confined runner as local mode.

Its role allows only its own logs and it is attached to no VPC, so a tool that reads
the function's credentials or opens sockets reaches nothing of O's. Lambda runs one
call at a time per environment, so whatever a call leaves running or writes is removed
after it.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from o.config import load_settings
from o.tools.sandbox.base import ToolInvocation
from o.tools.sandbox.host import adopt_orphans, harden_host_process
from o.tools.sandbox.local import LocalProcessSandbox
from o.tools.sandbox.sweep import empty_directory, kill_children

logger = Logger(service="o-tool-sandbox")
harden_host_process()
_settings = load_settings()
# only inside the Lambda runtime: elsewhere (a test importing this) the process has other children
_sweep = bool(_settings.lambda_runtime_api) and adopt_orphans()
# the environment's writable scratch space; emptied after each call so nothing a call
# wrote (its variables, say) is there for the next call, perhaps another organization's
_scratch = _settings.sandbox.scratch
_sandbox = LocalProcessSandbox(workdir_root=_scratch)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    invocation = ToolInvocation.from_dict(event)
    result = _sandbox.run(invocation)
    leftovers = 0
    if _sweep:
        leftovers = kill_children()
        empty_directory(_scratch)
    logger.info(
        "tool run",
        extra={
            "tool": invocation.function_name,
            "status": result.status,
            "leftovers_killed": leftovers,
            "duration_ms": round(result.duration_ms, 1),
            "isolation": list(result.isolation),
        },
    )
    return result.to_dict()
