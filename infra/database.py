"""RDS PostgreSQL with pgvector behind RDS Proxy.

Encrypted at rest, TLS required (``rds.force_ssl`` on the instance, ``require_tls`` on
the proxy), placed in isolated subnets with no route to the internet, credentials
generated into Secrets Manager and rotated. The functions connect only to the proxy,
which multiplexes the many short-lived Lambda connections onto a few database ones.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.service_function import MANAGED, acknowledge
from o.config import env_name

ADMIN_USER = "o_admin"
POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        data_subnets: ec2.SubnetSelection,
        proxy_subnets: ec2.SubnetSelection,
        postgres_version: str,
        instance_type: str,
        storage_gib: int,
        multi_az: bool,
        deletion_protection: bool,
        db_name: str,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.db_name = db_name
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(postgres_version, postgres_version.split(".")[0])
        )
        parameters = rds.ParameterGroup(
            self,
            "Parameters",
            engine=engine,
            description="O: TLS only; log slow statements",
            parameters={"rds.force_ssl": "1", "log_min_duration_statement": "1000"},
        )
        # Named so its log groups can be created here with a retention, instead of by a
        # log-retention helper Lambda that cloudwatch_logs_retention would add to the stack.
        self.instance_identifier = f"{Stack.of(self).stack_name.lower()}-postgres"
        log_groups = [
            logs.LogGroup(
                self,
                f"{kind.capitalize()}Logs",
                log_group_name=f"/aws/rds/instance/{self.instance_identifier}/{kind}",
                retention=log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            for kind in LOG_EXPORTS
        ]
        self.instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=self.instance_identifier,
            engine=engine,
            instance_type=ec2.InstanceType(instance_type),
            vpc=vpc,
            vpc_subnets=data_subnets,
            publicly_accessible=False,
            credentials=rds.Credentials.from_generated_secret(ADMIN_USER),
            database_name=db_name,
            port=POSTGRES_PORT,
            storage_encrypted=True,
            allocated_storage=storage_gib,
            max_allocated_storage=storage_gib * 5,
            storage_type=rds.StorageType.GP3,
            multi_az=multi_az,
            parameter_group=parameters,
            backup_retention=Duration.days(7),
            deletion_protection=deletion_protection,
            removal_policy=RemovalPolicy.SNAPSHOT,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=list(LOG_EXPORTS),
            monitoring_interval=Duration.seconds(60),
        )
        for group in log_groups:
            self.instance.node.add_dependency(group)
        secret = self.instance.secret
        assert secret is not None  # generated above
        self.secret: secretsmanager.ISecret = secret
        self.instance.add_rotation_single_user(automatically_after=Duration.days(30), vpc_subnets=proxy_subnets)

        self.proxy_security_group = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy of O", allow_all_outbound=False
        )
        self.proxy = self.instance.add_proxy(
            "Proxy",
            db_proxy_name=f"{Stack.of(self).stack_name}-proxy",
            secrets=[secret],
            vpc=vpc,
            vpc_subnets=proxy_subnets,
            security_groups=[self.proxy_security_group],
            require_tls=True,
            iam_auth=False,
            idle_client_timeout=Duration.minutes(30),
        )
        self.proxy_security_group.connections.allow_to(self.instance, ec2.Port.tcp(POSTGRES_PORT), "proxy to database")

        CfnOutput(self, "ProxyEndpoint", value=self.proxy.endpoint)
        CfnOutput(self, "SecretArn", value=secret.secret_arn)

        rules = [
            (
                "AwsSolutions-RDS11",
                "clients reach the database only through RDS Proxy, which always "
                "listens on 5432; a different instance port would hide nothing",
            ),
            (
                f"AwsSolutions-IAM4[Policy::{MANAGED}AmazonRDSEnhancedMonitoringRole]",
                "the managed policy RDS Enhanced Monitoring is designed to use",
            ),
        ]
        if not multi_az:
            rules.append(
                (
                    "AwsSolutions-RDS3",
                    "single-AZ keeps the idle cost low (o:dbMultiAz=false); production deploys set o:dbMultiAz=true",
                )
            )
        acknowledge(self, *rules)  # fmt: skip

    def allow_from(self, peer: ec2.IConnectable) -> None:
        """Let ``peer`` (a function security group) open connections to the proxy."""
        self.proxy_security_group.connections.allow_from(peer, ec2.Port.tcp(POSTGRES_PORT), "functions to RDS Proxy")

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` read the credentials it uses to connect through the proxy."""
        self.secret.grant_read(grantee)

    def environment(self) -> dict[str, str]:
        """The settings from which ``o.aws.database.database_url_from_secret`` builds the URI."""
        return {
            env_name("db", "host"): self.proxy.endpoint,
            env_name("db", "secret_arn"): self.secret.secret_arn,
            env_name("db", "name"): self.db_name,
            # RDS Proxy pins a connection that uses server-side prepared statements.
            env_name(None, "disable_prepared_statements"): "true",
            env_name(None, "run_migrations"): "false",
        }
