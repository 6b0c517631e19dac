"""The tool sandbox: the Lambda that runs user-defined Python tools.

Hostile code may run here, so the function sits outside the VPC (it cannot reach the
database or the endpoints) and its role may write its own logs and nothing else: no
secrets, no database credentials, no AWS API. The agent-step and API functions invoke
it; it never calls back.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.service_function import FunctionAssets, ServiceFunction, grant_invoke_exact

HANDLER = "functions.tool_sandbox.handler.handler"


class ToolSandbox(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, assets: FunctionAssets) -> None:
        super().__init__(scope, construct_id)
        self.service = ServiceFunction(
            self,
            "Sandbox",
            assets=assets,
            handler=HANDLER,
            description="O tool sandbox: runs user-defined tools with no AWS permissions",
            service="o-tool-sandbox",
            memory_mb=1024,
            timeout=Duration.seconds(60),
            own_logs_only=True,
        )
        self.function = self.service.function

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        grant_invoke_exact(self.function, grantee)
