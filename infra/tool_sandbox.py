"""The tool sandbox: the Lambda that runs user-defined Python tools.

Hostile code may run here, so the function has no way out (see infra/README.md, "The tool
sandbox"): it sits in isolated subnets with no route anywhere, behind a network ACL that
drops every packet and a security group with no egress (``Network.sandbox``), and nothing
admits it, neither the database nor the VPC endpoints. Its role lets its code write its
own logs and nothing else: no secrets, no database credentials, no AWS API, and no network
to use them on if it had any. Reserved concurrency caps how many tool calls run at once.
The agent-step, API and evolution functions invoke it; it never calls back.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.service_function import FunctionAssets, FunctionNetwork, ServiceFunction, grant_invoke_exact

HANDLER = "functions.tool_sandbox.handler.handler"


class ToolSandbox(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        network: FunctionNetwork,
        reserved_concurrency: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.service = ServiceFunction(
            self,
            "Sandbox",
            assets=assets,
            handler=HANDLER,
            description="O tool sandbox: runs user-defined tools with no network and no AWS permissions",
            service="o-tool-sandbox",
            memory_mb=1024,
            timeout=Duration.seconds(60),
            network=network,
            own_logs_only=True,
            reserved_concurrency=reserved_concurrency,
        )
        self.function = self.service.function

    def grant_invoke(self, grantee: iam.IGrantable) -> None:
        grant_invoke_exact(self.function, grantee)
