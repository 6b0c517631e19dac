"""The ``live`` aliases every caller goes through: API Gateway to the API, the agent loop to the step.

A deploy points ``live`` at the version it publishes, with no extra weight. The
evolution loop later shifts a small weight of ``live`` to a candidate version and
promotes or rolls it back (``RoutingConfig``, see the evolution issue); the
permissions it needs for that come from :meth:`Rollout.grant_manage`. A deploy made
during a canary resets the alias to the deployed version, which ends the canary.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.service_function import acknowledge

ALIAS_NAME = "live"


class Rollout(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.aliases: dict[str, lambda_.Alias] = {}
        self._functions: dict[str, lambda_.Function] = {}

    def live(self, name: str, function: lambda_.Function) -> lambda_.Alias:
        """The ``live`` alias of ``function``, on the version this deploy publishes."""
        alias = lambda_.Alias(
            self,
            f"{name}Live",
            alias_name=ALIAS_NAME,
            version=function.current_version,
            description=f"{name}: the version that takes traffic; canaries add a weighted second one",
        )
        self.aliases[name] = alias
        self._functions[name] = function
        return alias

    def grant_manage(self, name: str, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` publish versions of ``name`` and move the weights of its ``live`` alias.

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
