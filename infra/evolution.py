"""Self-evolution: the evolution function and its Standard state machine (JSONPath ASL).

The ASL comes from ``o.evolution.statemachine.evolution_definition`` (the contract with
``functions/evolution/handler.py`` lives there). A canary publishes a version of the
agent-step function and moves a weight of its ``live`` alias, so this function may manage that
alias (``Rollout.grant_manage``) and read the per-version metrics (``grant_agent_metrics``); the API,
which stops an evolution and takes its canary off the alias at once, may only do that
(``Rollout.grant_withdraw``). The metrics are written by the agent step as EMF log lines, which need
no CloudWatch permission.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.rollout import ALIAS_NAME
from infra.service_function import FunctionAssets, FunctionNetwork, ServiceFunction, acknowledge
from o.config import env_name
from o.evolution.statemachine import evolution_definition

EVENT_BUS = "default"

HANDLER = "functions.evolution.handler.handler"


class Evolution(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        network: FunctionNetwork,
        environment: dict[str, str],
        step_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.state_machine_name = f"{stack.stack_name}-evolution"
        # Built from the fixed name, not a reference: the functions that start evolutions are also
        # the ones the machine invokes, and a reference would make a dependency cycle.
        self.state_machine_arn = stack.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self._step_function = step_function
        self.service = ServiceFunction(
            self,
            "Worker",
            assets=assets,
            handler=HANDLER,
            description="O self-evolution: one step (reflect, propose, shadow, gate, canary, evaluate, rollback)",
            service="o-evolution",
            memory_mb=1024,
            timeout=Duration.minutes(15),
            environment={**environment, **self.environment()},
            network=network,
        )
        self.function = self.service.function
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=assets.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(
                json.dumps(evolution_definition(self.function.function_arn))
            ),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        iam.Grant.add_to_principal(
            grantee=self.state_machine, actions=["lambda:InvokeFunction"], resource_arns=[self.function.function_arn]
        )
        acknowledge(
            self,
            ("AwsSolutions-IAM5[Resource::*]", "CloudWatch Logs delivery and X-Ray actions of Step Functions "
             "have no resource-level permissions"),
        )  # fmt: skip

    def environment(self) -> dict[str, str]:
        """What ``o.config.EvolutionSettings`` reads: the alias canaries move, and the evolution machine."""
        return {
            env_name("evolution", "step_function_name"): self._step_function.function_name,
            env_name("evolution", "step_alias"): ALIAS_NAME,
            env_name("evolution", "state_machine_arn"): self.state_machine_arn,
            # promotions and rollbacks are told on the account's default bus (o.aws.events)
            env_name("evolution", "event_bus"): EVENT_BUS,
        }

    def grant_start(self, grantee: iam.IGrantable) -> None:
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["states:StartExecution"], resource_arns=[self.state_machine_arn]
        )


def grant_decision_events(scope: Construct, grantee: iam.IGrantable) -> None:
    """Let ``grantee`` put evolution decisions on the default event bus (and on no other)."""
    bus = Stack.of(scope).format_arn(
        service="events", resource="event-bus", resource_name=EVENT_BUS, arn_format=ArnFormat.SLASH_RESOURCE_NAME
    )
    iam.Grant.add_to_principal(grantee=grantee, actions=["events:PutEvents"], resource_arns=[bus])


def grant_agent_metrics(grantee: iam.IGrantable) -> None:
    """Let ``grantee`` query the per-version outcome metrics (a canary's evidence). They are written
    as EMF log lines by the agent step, which needs no CloudWatch permission for that."""
    iam.Grant.add_to_principal(grantee=grantee, actions=["cloudwatch:GetMetricData"], resource_arns=["*"])
