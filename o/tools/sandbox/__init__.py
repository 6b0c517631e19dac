"""Where tool code runs: never in the API or step process.

:class:`~o.tools.sandbox.base.Sandbox` is the port. Locally each call runs in a confined child
process (:class:`~o.tools.sandbox.local.LocalProcessSandbox`); in AWS the composition root picks
the sandbox Lambda (:class:`o.aws.sandbox.LambdaSandbox`) when ``O_SANDBOX_KIND=lambda`` or a
sandbox function is configured. See README.md in this folder for what is and is not isolated.
"""

from __future__ import annotations

from o.tools.sandbox.base import Limits, Sandbox, ToolInvocation, ToolResult
from o.tools.sandbox.local import LocalProcessSandbox

__all__ = ["Limits", "LocalProcessSandbox", "Sandbox", "ToolInvocation", "ToolResult"]
