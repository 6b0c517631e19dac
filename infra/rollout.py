"""The ``live`` aliases every caller goes through: API Gateway to the API, the agent loop to the step.

A deploy points ``live`` at the version it publishes, with no extra weight. The
evolution loop later shifts a small weight of ``live`` to a candidate version and
promotes or rolls it back (``RoutingConfig``, see the evolution issue); the
permissions it needs for that come from :meth:`Rollout.grant_manage`. A deploy made
during a canary resets the alias to the deployed version, which ends the canary.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

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
        """Let ``grantee`` publish versions of ``name`` and move the weights of its ``live`` alias."""
        function = self._functions[name]
        iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[
                "lambda:GetAlias",
                "lambda:UpdateAlias",
                "lambda:PublishVersion",
                "lambda:GetFunctionConfiguration",
                "lambda:UpdateFunctionConfiguration",
                "lambda:ListVersionsByFunction",
            ],
            # The function (versions are published from it) and its live alias, nothing wider.
            resource_arns=[function.function_arn, f"{function.function_arn}:{ALIAS_NAME}"],
        )
