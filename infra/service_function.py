"""The one way O defines a Lambda function: shared code asset and layer, arm64, Powertools.

Every function runs the same code folder (``infra.build.build_code``) with the same
dependency layer; only the handler, size, environment and network differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import Acknowledgment, Duration, RemovalPolicy, Validations
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


class ServiceFunction(Construct):
    """A Lambda function of O with its own log group.

    ``network=None`` keeps the function out of the VPC (the tool sandbox, which must
    not reach the database); ``own_logs_only`` gives it a role that may write its own
    log group and do nothing else.
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
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=assets.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        role: iam.IRole | None = None
        if own_logs_only:
            # No managed policy, no X-Ray, no VPC: the role can write this function's logs and nothing else.
            own_role = iam.Role(
                self,
                "Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"{service}: writes its own logs, nothing else",
            )
            own_role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                )
            )
            role, tracing = own_role, False
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
        )
        rules = [
            (
                "AwsSolutions-L1",
                f"Python {PYTHON_VERSION} is the version the dependency layer's wheels are "
                "built for (infra.build.PYTHON_VERSION); both move together",
            ),
        ]
        if not own_logs_only:
            rules += [
                (
                    f"AwsSolutions-IAM4[Policy::{MANAGED}AWSLambdaBasicExecutionRole]",
                    "the minimal managed policy that lets Lambda write the function's logs",
                ),
                (
                    f"AwsSolutions-IAM4[Policy::{MANAGED}AWSLambdaVPCAccessExecutionRole]",
                    "the minimal managed policy that lets Lambda attach the function to the VPC",
                ),
                (
                    "AwsSolutions-IAM5[Resource::*]",
                    "X-Ray PutTraceSegments/PutTelemetryRecords and CloudWatch PutMetricData/GetMetricData have "
                    "no resource-level permissions (metric writes are limited to O's namespace by condition)",
                ),
            ]
        acknowledge(self, *rules)  # fmt: skip


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
