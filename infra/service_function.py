"""The one way O defines a Lambda function: shared code asset and layer, arm64, Powertools.

Every function runs the same code folder (``infra.build.build_code``) with the same
dependency layer; only the handler, size, environment and network differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jsii
from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Stack, Token, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.build import MODELS_MOUNT, PYTHON_VERSION
from o.config import env_name

RUNTIME = lambda_.Runtime(f"python{PYTHON_VERSION}", lambda_.RuntimeFamily.PYTHON)
ARCHITECTURE = lambda_.Architecture.ARM_64
METRICS_NAMESPACE = "O"
# The validation plugin whose findings ``acknowledge`` suppresses.
NAG_PACK = "AwsSolutions"
# How cdk-nag names an AWS managed policy in a finding.
MANAGED = "arn:<AWS::Partition>:iam::aws:policy/service-role/"


@dataclass(frozen=True)
class AssetFolders:
    """The built folders (``infra.build``) the stack turns into assets."""

    code: Path
    layer: Path
    code_fingerprint: str


@dataclass(frozen=True)
class FunctionAssets:
    """What every function is built from."""

    code: lambda_.Code
    layer: lambda_.ILayerVersion
    code_fingerprint: str
    log_retention: logs.RetentionDays


@dataclass(frozen=True)
class FunctionNetwork:
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    security_group: ec2.ISecurityGroup
    # The way out is IPv6 (dual-stack subnets, an egress-only internet gateway): Lambda sends the function's
    # IPv6 traffic only when the function allows it (Ipv6AllowedForDualStack), and the AWS SDK must use the
    # services' dual-stack endpoints, as their IPv4-only names have no route.
    ipv6_egress: bool = False


# botocore reads it in every client it makes: ``<service>.<region>.api.aws`` instead of ``amazonaws.com``.
DUALSTACK_ENV = "AWS_USE_DUALSTACK_ENDPOINT"


# What Lambda does with a function's role to attach the function to a VPC: the statements of the AWS managed
# policy AWSLambdaVPCAccessExecutionRole without its logs:* on every log group.
ENI_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
)
OWN_LOGS_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# Set by Lambda on every AWS call made with the role from inside the function's execution environment, and on
# no call Lambda makes itself to create the function's network interfaces (Lambda developer guide, "Using
# source function ARN to control function access behavior").
SOURCE_FUNCTION_KEY = "lambda:SourceFunctionArn"


@jsii.implements(iam.IGrantable)
class ServiceFunction(Construct):
    """A Lambda function of O with its own log group and its own role.

    The role may write that log group (no managed policy: AWSLambdaBasicExecutionRole would allow
    every log group in the account) and, in a VPC, hold the network-interface rights Lambda
    attaches the function with; the stack grants the rest. ``network=None`` keeps the function
    out of the VPC; ``own_logs_only`` lets the function's code do nothing but write its logs (the
    tool sandbox).

    Grant to the ServiceFunction itself (it is ``IGrantable``) when the grant acknowledges a cdk-nag
    finding on its grantee: the policy lives on the role, beside the function, not under it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        handler: str,
        description: str,
        service: str,
        memory_mb: int = 1024,
        timeout: Duration | None = None,
        environment: Mapping[str, str] | None = None,
        network: FunctionNetwork | None = None,
        tracing: bool = True,
        own_logs_only: bool = False,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=assets.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role = self._role(service, in_vpc=network is not None, own_logs_only=own_logs_only)
        # No X-Ray for the sandbox: its code may reach nothing, traces included.
        tracing = tracing and not own_logs_only
        # The offline embedding model ships in the layer's models/ folder (infra.build).
        models = (
            {}
            if own_logs_only
            else {
                env_name("embedding", "model_path"): f"{MODELS_MOUNT}/model.onnx",
                env_name("embedding", "tokenizer_path"): f"{MODELS_MOUNT}/tokenizer.json",
            }
        )
        env = {
            **models,
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": "INFO",
            env_name(None, "runtime"): "lambda",
            **({DUALSTACK_ENV: "true"} if network is not None and network.ipv6_egress else {}),
            **(environment or {}),
        }
        self.function = lambda_.Function(
            self,
            "Function",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=assets.code,
            handler=handler,
            layers=[assets.layer],
            description=description,
            memory_size=memory_mb,
            timeout=timeout or Duration.seconds(30),
            environment=env,
            log_group=self.log_group,
            role=role,
            tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            vpc=network.vpc if network else None,
            vpc_subnets=network.subnets if network else None,
            security_groups=[network.security_group] if network else None,
            ipv6_allowed_for_dual_stack=True if network is not None and network.ipv6_egress else None,
            reserved_concurrent_executions=reserved_concurrency,
        )
        acknowledge(self, *_nag_reasons(own_logs_only=own_logs_only, in_vpc=network is not None))

    @property
    def grant_principal(self) -> iam.IPrincipal:
        return self.function.grant_principal

    def _role(self, service: str, *, in_vpc: bool, own_logs_only: bool) -> iam.Role:
        """The function's role: its own log group, not AWSLambdaBasicExecutionRole's logs:* on every group."""
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{service}: its code may write its own logs, nothing else"
            if own_logs_only
            else f"{service}: its own logs; what else it may do is granted where the stack wires it",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=list(OWN_LOGS_ACTIONS), resources=[self.log_group.log_group_arn])
        )
        if in_vpc:
            # Lambda creates and deletes the function's network interfaces with its role, so the role must
            # hold these; DescribeNetworkInterfaces works only on "*".
            role.add_to_principal_policy(iam.PolicyStatement(actions=list(ENI_ACTIONS), resources=["*"]))
        if own_logs_only:
            # ...and the sandbox's code may use none of it, nothing at all but its logs: every call made from
            # inside the function carries its ARN, which Lambda's own network-interface calls do not.
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    effect=iam.Effect.DENY,
                    not_actions=list(OWN_LOGS_ACTIONS),
                    resources=["*"],
                    conditions={"Null": {SOURCE_FUNCTION_KEY: "false"}},
                )
            )
        return role


def _nag_reasons(*, own_logs_only: bool, in_vpc: bool) -> list[tuple[str, str]]:
    rules = [
        (
            "AwsSolutions-L1",
            f"Python {PYTHON_VERSION} is the version the dependency layer's wheels are "
            "built for (infra.build.PYTHON_VERSION); both move together",
        ),
    ]
    reasons = []
    if in_vpc:
        reasons.append(
            "Lambda attaches the function to its subnets with the role's EC2 network-interface rights, and "
            "DescribeNetworkInterfaces has no resource-level permissions"
        )
    if own_logs_only:
        reasons.append("a Deny on every call made from the function's own code (lambda:SourceFunctionArn) keeps it "
                       "from them")  # fmt: skip
    else:
        reasons.append(
            "X-Ray PutTraceSegments/PutTelemetryRecords, CloudWatch GetMetricData and the Step Functions "
            "task-token actions (SendTaskSuccess) have no resource-level permissions"
        )
    if reasons:
        rules.append(("AwsSolutions-IAM5[Resource::*]", "; ".join(reasons)))
    return rules


def function_assets(scope: Construct, folders: AssetFolders, log_retention: logs.RetentionDays) -> FunctionAssets:
    """The shared code asset and the one dependency layer, created once per stack."""
    layer = lambda_.LayerVersion(
        scope,
        "Dependencies",
        code=lambda_.Code.from_asset(str(folders.layer)),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="O runtime dependencies (layers/requirements.txt)",
    )
    return FunctionAssets(
        code=lambda_.Code.from_asset(str(folders.code)),
        layer=layer,
        code_fingerprint=folders.code_fingerprint,
        log_retention=log_retention,
    )


def acknowledge(scope: Construct, *rules: tuple[str, str]) -> None:
    """Acknowledge cdk-nag findings on ``scope`` and its children, each with its reason.

    A finding about one policy or resource must be named in full, e.g.
    ``AwsSolutions-IAM5[Resource::*]``; the bare rule id does not cover it.
    """
    Validations.of(scope).acknowledge(
        *(Acknowledgment(id=f"{NAG_PACK}::{rule}", reason=reason) for rule, reason in rules)
    )


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}


def grant_invoke_exact(function: lambda_.IFunction, grantee: iam.IGrantable) -> None:
    """Allow invoking ``function`` itself, without the ``:*`` (every version) that grant_invoke adds."""
    iam.Grant.add_to_principal(
        grantee=grantee, actions=["lambda:InvokeFunction"], resource_arns=[function.function_arn]
    )


def retention_days(days: int) -> logs.RetentionDays:
    if days not in _RETENTION:
        raise ValueError(f"o:logRetentionDays must be one of {sorted(_RETENTION)}, not {days}")
    return _RETENTION[days]


def grant_bedrock(service: ServiceFunction) -> None:
    """Calling Amazon Bedrock models with the function's own role: Converse needs ``bedrock:InvokeModel``,
    ConverseStream ``bedrock:InvokeModelWithResponseStream``. Foundation models have no account in their
    ARN, and a cross-region inference profile (``us.anthropic...``) routes to the model in another region,
    so foundation models are allowed in any region; inference profiles only this account's, in this region."""
    stack = Stack.of(service)
    region, account = stack.region, stack.account
    resources = [
        "arn:{partition}:bedrock:*::foundation-model/*",
        "arn:{partition}:bedrock:{region}:{account}:inference-profile/*",
        "arn:{partition}:bedrock:{region}:{account}:application-inference-profile/*",
    ]
    iam.Grant.add_to_principal(
        grantee=service.function,
        actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"],
        resource_arns=[r.format(partition=stack.partition, region=region, account=account) for r in resources],
    )

    # cdk-nag names an unresolved part by its pseudo parameter
    def shown(value: str, pseudo: str) -> str:
        return f"<AWS::{pseudo}>" if Token.is_unresolved(value) else value

    names = {"partition": "<AWS::Partition>", "region": shown(region, "Region"), "account": shown(account, "AccountId")}
    acknowledge(
        service,
        *(
            (f"AwsSolutions-IAM5[Resource::{r.format(**names)}]", "any Bedrock model the operator picks (a handle "
             "names it at run time); only invoking, and inference profiles only of this account and region")
            for r in resources
        ),
    )  # fmt: skip
