"""Schema migrations on every deploy: a custom resource backed by ``functions/migrate``.

The resource's properties carry the fingerprint of the code asset, so any change to
``schema/`` or ``o/`` makes CloudFormation call the function again; the migrator
itself skips what is already applied. Functions that serve traffic depend on it, so
new code never goes live before its schema.

A first deploy must never hang on it: the function tries a database that is not
reachable yet again until shortly before its timeout and always answers, with the last
error on failure (``functions/migrate/handler.py``); should it never answer (it could not
even start), CloudFormation gives up after ``SERVICE_TIMEOUT`` instead of its default hour
and rolls back.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import CustomResource, Duration
from constructs import Construct

from infra.database import Database
from infra.service_function import FunctionAssets, FunctionNetwork, ServiceFunction

HANDLER = "functions.migrate.handler.handler"
TIMEOUT = Duration.minutes(10)
# The function's timeout and a minute for Lambda to start it and for the response to arrive.
SERVICE_TIMEOUT = TIMEOUT.plus(Duration.minutes(1))


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
            timeout=TIMEOUT,
            # the database as its owner, and the key that seals tool secrets an earlier release stored in plaintext
            environment={**database.admin_environment(), **(environment or {})},
            network=network,
        )
        database.grant_admin(self.service.function)
        database.allow_admin_from(network.security_group)
        self.resource = CustomResource(
            self,
            "Run",
            service_token=self.service.function.function_arn,
            resource_type="Custom::OSchemaMigrations",
            properties={"CodeFingerprint": assets.code_fingerprint},
            service_timeout=SERVICE_TIMEOUT,
        )
        # The database (and the rotation of its secret) must exist before the migrator connects.
        self.resource.node.add_dependency(database)
