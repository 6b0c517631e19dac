"""Schema migrations on every deploy: a custom resource backed by ``functions/migrate``.

The resource's properties carry the fingerprint of the code asset, so any change to
``schema/`` or ``o/`` makes CloudFormation call the function again; the migrator
itself skips what is already applied. Functions that serve traffic depend on it, so
new code never goes live before its schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CustomResource, Duration
from constructs import Construct

from infra.database import Database
from infra.service_function import FunctionAssets, FunctionNetwork, ServiceFunction

HANDLER = "functions.migrate.handler.handler"


class Migrations(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        network: FunctionNetwork,
        database: Database,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.service = ServiceFunction(
            self,
            "Migrate",
            assets=assets,
            handler=HANDLER,
            description="O: apply schema/ migrations (CloudFormation custom resource)",
            service="o-migrate",
            memory_mb=512,
            timeout=Duration.minutes(10),
            # the database, and the key that seals tool secrets an earlier release stored in plaintext
            environment={**database.environment(), **(environment or {})},
            network=network,
        )
        database.grant_connect(self.service.function)
        self.resource = CustomResource(
            self,
            "Run",
            service_token=self.service.function.function_arn,
            resource_type="Custom::OSchemaMigrations",
            properties={"CodeFingerprint": assets.code_fingerprint},
        )
        # The proxy must have its target registered before the migrator connects through it.
        self.resource.node.add_dependency(database)
