"""The ``live`` aliases every caller goes through: API Gateway to the API, the agent loop to the step.

The API's alias is CloudFormation's: each deploy points it at the version it publishes. The agent
step's alias has two owners with separate jobs: a deploy decides which code serves (the primary
version), the evolution loop decides the routing (a canary's weighted extra version, its promotion or
rollback, through :class:`o.aws.alias.LambdaAlias`). An ``AWS::Lambda::Alias`` would reset the routing
on every deploy and undo a running canary, so that alias is a custom resource
(``functions/alias/handler.py``) that moves only the primary version (:meth:`Rollout.runtime_routed`).
"""

from __future__ import annotations

from aws_cdk import CustomResource, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.service_function import FunctionAssets, ServiceFunction, acknowledge

ALIAS_NAME = "live"
OWNER_HANDLER = "functions.alias.handler.handler"


class Rollout(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, assets: FunctionAssets) -> None:
        super().__init__(scope, construct_id)
        self.aliases: dict[str, lambda_.IAlias] = {}
        self._functions: dict[str, lambda_.Function] = {}
        self._assets = assets
        self._owner: ServiceFunction | None = None
        # the custom resources behind runtime-routed aliases: whoever invokes such an alias depends on it
        self.alias_resources: dict[str, CustomResource] = {}

    def live(self, name: str, function: lambda_.Function) -> lambda_.Alias:
        """The ``live`` alias of ``function``, on the version this deploy publishes (CloudFormation's)."""
        alias = lambda_.Alias(
            self,
            f"{name}Live",
            alias_name=ALIAS_NAME,
            version=function.current_version,
            description=f"{name}: the version that takes traffic",
        )
        self.aliases[name] = alias
        self._functions[name] = function
        return alias

    def runtime_routed(self, name: str, function: lambda_.Function) -> lambda_.IAlias:
        """The ``live`` alias of ``function``: each deploy moves its primary version to the version it
        publishes and keeps the routing the evolution loop set (a canary's extra version and weight)."""
        version = function.current_version
        owner = self._owner_function()
        live = CustomResource(
            self,
            f"{name}LiveAlias",
            service_token=owner.function.function_arn,
            resource_type="Custom::OLiveAlias",
            properties={"FunctionName": function.function_name, "AliasName": ALIAS_NAME, "Version": version.version},
        )
        iam.Grant.add_to_principal(
            grantee=owner.function,
            actions=["lambda:GetAlias", "lambda:CreateAlias", "lambda:UpdateAlias", "lambda:DeleteAlias"],
            resource_arns=[function.function_arn],
        )
        alias = lambda_.Alias.from_alias_attributes(self, f"{name}Live", alias_name=ALIAS_NAME, alias_version=version)
        self.aliases[name] = alias
        self._functions[name] = function
        self.alias_resources[name] = live
        return alias

    def _owner_function(self) -> ServiceFunction:
        if self._owner is None:
            self._owner = ServiceFunction(
                self,
                "AliasOwner",
                assets=self._assets,
                handler=OWNER_HANDLER,
                description="O deploy: points the agent step's live alias at the deployed version, keeping a canary",
                service="o-live-alias",
                memory_mb=256,
                timeout=Duration.minutes(1),
            )
        return self._owner

    def grant_manage(self, name: str, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` (the evolution worker) publish versions of ``name`` and move the weights of its
        ``live`` alias: a canary's whole life (o/aws/alias.py's LambdaAlias).

        Lambda authorizes a call that names a version (``Qualifier=7``) against that version's ARN,
        so reading a published candidate's configuration needs ``<function>:*``; managing versions
        and the alias acts on the function itself (tests/integration/aws/test_iam.py checks both)."""
        function = self._functions[name]
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:PublishVersion",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionConfiguration",
            ],
            resource_arns=[function.function_arn],
        )
        self._grant_read_versions(function, grantee)

    def grant_withdraw(self, name: str, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` (the API, stopping an evolution) take a canary off ``name``'s ``live`` alias: read
        the alias and which evolution its extra version carries (a qualified GetFunctionConfiguration), and
        clear the weight. It may publish nothing and change no configuration."""
        function = self._functions[name]
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["lambda:GetAlias", "lambda:UpdateAlias"], resource_arns=[function.function_arn]
        )
        self._grant_read_versions(function, grantee)

    def _grant_read_versions(self, function: lambda_.Function, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=["lambda:GetFunctionConfiguration"],
            resource_arns=[f"{function.function_arn}:*"],
        )
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                (f"AwsSolutions-IAM5[Resource::<{Stack.of(function).get_logical_id(function.node.default_child)}"
                 ".Arn>:*]", "reading the configuration of the agent step's published versions (a canary's "
                 "candidate): Lambda authorizes a qualified call against the version's ARN"),
            )  # fmt: skip
