"""O's Postgres (pgvector): two users, two ways in, in one of two profiles.

- **The owner** (the generated master user, its password in Secrets Manager, rotated every 30 days by a
  rotation function; in economy by RDS itself every 7 days) runs
  the migrations and nothing else: only the migrate function may read its secret, and only it may reach
  the database itself. The migrations create the **app role** (``o_app``, o/store/roles.py): rows of O's
  tables, no DDL.
- **The functions that serve traffic** connect as the app role with an IAM auth token (no password
  anywhere, nothing to rotate): their roles may ``rds-db:connect`` as that user and no other, and read no
  database secret.

Profiles (``o:profile``):

- ``standard`` (default): RDS PostgreSQL on an always-on instance behind RDS Proxy. The proxy requires
  TLS and IAM from clients and authenticates to the database with IAM too (end-to-end IAM,
  ``DefaultAuthScheme=IAM_AUTH``: the proxy holds no secret), multiplexing the many short-lived Lambda
  connections onto a few.
- ``economy``: Aurora PostgreSQL Serverless v2 with a minimum of 0 ACU, which pauses after
  ``o:dbAutoPauseMinutes`` without connections and costs nothing but storage while paused. No proxy: a
  proxy keeps connections open to the database, which keeps it from pausing (Aurora user guide, "Scaling
  to Zero ACUs with automatic pause and resume"); the functions use IAM authentication on the cluster
  directly. The first connection after a pause waits for the resume (about 15 s). The owner's password is
  RDS-managed (``ManageMasterUserPassword``): RDS rotates it in its own secret, no rotation function runs.

Both: encrypted at rest, TLS only (``rds.force_ssl``), isolated subnets with no route out, 7-day backups,
and what deleting the stack does to the data (``o:dbRemovalPolicy``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.service_function import MANAGED, acknowledge
from o.config import env_name

ADMIN_USER = "o_admin"
# The role the migrations create (o/store/roles.py) and the serving functions connect as.
APP_USER = "o_app"
POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
# Economy: how long an idle connection may stay open (see _cluster).
IDLE_SESSION_TIMEOUT_MS = 60_000
Profile = Literal["standard", "economy"]


@dataclass(frozen=True)
class DatabaseOptions:
    profile: Profile
    postgres_version: str
    aurora_version: str
    instance_type: str
    storage_gib: int
    multi_az: bool
    deletion_protection: bool
    db_name: str
    removal_policy: RemovalPolicy
    # keep the credentials with a kept database (o:dbRemovalPolicy=retain)
    retain_secret: bool
    max_acu: float
    auto_pause: Duration


class Database(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        data_subnets: ec2.SubnetSelection,
        proxy_subnets: ec2.SubnetSelection,
        options: DatabaseOptions,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.db_name = options.db_name
        self.profile = options.profile
        self.proxy: rds.DatabaseProxy | None = None
        self.cluster: rds.DatabaseCluster | None = None
        self.instance: rds.DatabaseInstance | None = None
        rules: list[tuple[str, str]] = []
        if options.profile == "economy":
            self.cluster = self._cluster(vpc, data_subnets, options, log_retention)
            self._database: rds.DatabaseCluster | rds.DatabaseInstance = self.cluster
            self.admin_host = self.app_host = self.cluster.cluster_endpoint.hostname
            rules.append(("AwsSolutions-RDS14", "Backtrack is an Aurora MySQL feature; this is Aurora PostgreSQL"))
        else:
            self.instance = self._instance(vpc, data_subnets, options, log_retention)
            self._database = self.instance
            self.proxy = self._proxy(vpc, proxy_subnets)
            self.admin_host = self.instance.db_instance_endpoint_address
            self.app_host = self.proxy.endpoint
            rules.append(
                (f"AwsSolutions-IAM4[Policy::{MANAGED}AmazonRDSEnhancedMonitoringRole]",
                 "the managed policy RDS Enhanced Monitoring is designed to use")
            )  # fmt: skip
            if not options.multi_az:
                rules.append(("AwsSolutions-RDS3", "single-AZ keeps the idle cost low (o:dbMultiAz=false); "
                              "production deploys set o:dbMultiAz=true"))  # fmt: skip
        secret = self._database.secret
        assert secret is not None  # generated, or managed by RDS (economy)
        self.secret: secretsmanager.ISecret = secret
        if self.cluster is None:
            self._database.add_rotation_single_user(automatically_after=Duration.days(30), vpc_subnets=proxy_subnets)
        if options.retain_secret:
            for child in self.node.find_all():
                if isinstance(child, secretsmanager.CfnSecret):
                    child.apply_removal_policy(options.removal_policy)

        CfnOutput(self, "ProxyEndpoint" if self.proxy else "ClusterEndpoint", value=self.app_host)
        CfnOutput(self, "SecretArn", value=secret.secret_arn)
        rules.append(
            ("AwsSolutions-RDS11", "the database listens on Postgres's 5432; a different port would hide nothing "
             "from a client that is let in by its security group and IAM anyway")
        )  # fmt: skip
        acknowledge(self, *rules)

    def _instance(
        self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, options: DatabaseOptions, retention: logs.RetentionDays
    ) -> rds.DatabaseInstance:
        version = options.postgres_version
        engine = rds.DatabaseInstanceEngine.postgres(
            version=rds.PostgresEngineVersion.of(version, version.split(".")[0])
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
        log_groups = self._log_groups(f"/aws/rds/instance/{self.instance_identifier}", LOG_EXPORTS, retention)
        instance = rds.DatabaseInstance(
            self,
            "Instance",
            instance_identifier=self.instance_identifier,
            engine=engine,
            instance_type=ec2.InstanceType(options.instance_type),
            vpc=vpc,
            vpc_subnets=subnets,
            publicly_accessible=False,
            credentials=rds.Credentials.from_generated_secret(ADMIN_USER),
            database_name=options.db_name,
            port=POSTGRES_PORT,
            storage_encrypted=True,
            allocated_storage=options.storage_gib,
            max_allocated_storage=options.storage_gib * 5,
            storage_type=rds.StorageType.GP3,
            multi_az=options.multi_az,
            parameter_group=parameters,
            backup_retention=Duration.days(7),
            deletion_protection=options.deletion_protection,
            removal_policy=options.removal_policy,
            auto_minor_version_upgrade=True,
            cloudwatch_logs_exports=list(LOG_EXPORTS),
            monitoring_interval=Duration.seconds(60),
            # the proxy logs in as the app role with IAM (end-to-end IAM); the owner keeps its password
            iam_authentication=True,
        )
        for group in log_groups:
            instance.node.add_dependency(group)
        return instance

    def _proxy(self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection) -> rds.DatabaseProxy:
        assert self.instance is not None
        self.proxy_security_group = ec2.SecurityGroup(
            self, "ProxySecurityGroup", vpc=vpc, description="RDS Proxy of O", allow_all_outbound=False
        )
        # End-to-end IAM: the proxy logs in to the instance as the app role with its own role's token.
        role = iam.Role(self, "ProxyRole", assumed_by=iam.ServicePrincipal("rds.amazonaws.com"),
                        description="RDS Proxy of O: connect to the database as the app role")  # fmt: skip
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["rds-db:connect"],
                resources=[
                    stack.format_arn(
                        service="rds-db",
                        resource="dbuser",
                        resource_name=f"{self.instance.instance_resource_id}/{APP_USER}",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        # add_proxy lets the proxy's group reach the instance (both directions of the rule).
        return self.instance.add_proxy(
            "Proxy",
            role=role,
            db_proxy_name=f"{Stack.of(self).stack_name}-proxy",
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[self.proxy_security_group],
            require_tls=True,
            # clients present an IAM token, and the proxy presents one to the database: no secret in between
            iam_auth=True,
            default_auth_scheme=rds.DefaultAuthScheme.IAM_AUTH,
            idle_client_timeout=Duration.minutes(30),
        )

    def _cluster(
        self, vpc: ec2.IVpc, subnets: ec2.SubnetSelection, options: DatabaseOptions, retention: logs.RetentionDays
    ) -> rds.DatabaseCluster:
        version = options.aurora_version
        engine = rds.DatabaseClusterEngine.aurora_postgres(
            version=rds.AuroraPostgresEngineVersion.of(version, version.split(".")[0])
        )
        self.cluster_identifier = f"{Stack.of(self).stack_name.lower()}-aurora"
        log_groups = self._log_groups(f"/aws/rds/cluster/{self.cluster_identifier}", ("postgresql",), retention)
        cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=self.cluster_identifier,
            engine=engine,
            writer=rds.ClusterInstance.serverless_v2(
                "Writer", publicly_accessible=False, auto_minor_version_upgrade=True
            ),
            # 0 ACU: the writer pauses when no connection came for auto_pause, and costs only its storage
            serverless_v2_min_capacity=0,
            serverless_v2_max_capacity=options.max_acu,
            serverless_v2_auto_pause_duration=options.auto_pause,
            vpc=vpc,
            vpc_subnets=subnets,
            # RDS keeps the owner's password in a secret of its own and rotates it itself (every 7 days), with
            # no rotation function: economy's app subnets have no IPv4 way out to reach Secrets Manager from a
            # rotation Lambda, and that function would be one more thing deployed for a monthly job.
            credentials=rds.Credentials.from_username(ADMIN_USER),
            manage_master_user_password=True,
            default_database_name=options.db_name,
            port=POSTGRES_PORT,
            storage_encrypted=True,
            parameters={
                "rds.force_ssl": "1",
                "log_min_duration_statement": "1000",
                # A Lambda execution environment keeps its connection while frozen between invocations, for as
                # long as Lambda keeps the environment; an open connection keeps the database from pausing. The
                # server closes a connection idle this long (ms); the pool checks and reopens it on the next use.
                "idle_session_timeout": str(IDLE_SESSION_TIMEOUT_MS),
            },
            backup=rds.BackupProps(retention=Duration.days(7)),
            deletion_protection=options.deletion_protection,
            removal_policy=options.removal_policy,
            cloudwatch_logs_exports=["postgresql"],
            iam_authentication=True,
        )
        for group in log_groups:
            cluster.node.add_dependency(group)
        return cluster

    def _log_groups(self, prefix: str, kinds: tuple[str, ...], retention: logs.RetentionDays) -> list[logs.LogGroup]:
        return [
            logs.LogGroup(
                self,
                f"{kind.capitalize()}Logs",
                log_group_name=f"{prefix}/{kind}",
                retention=retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            for kind in kinds
        ]

    def allow_from(self, peer: ec2.IConnectable) -> None:
        """Let ``peer`` (the serving functions' security group) reach the proxy, or the cluster (economy)."""
        if self.proxy is not None:
            self.proxy_security_group.connections.allow_from(
                peer, ec2.Port.tcp(POSTGRES_PORT), "functions to RDS Proxy"
            )
        else:
            self._database.connections.allow_default_port_from(peer, "functions to the database")

    def allow_admin_from(self, peer: ec2.IConnectable) -> None:
        """Let ``peer`` (the migrate function's security group) reach the database itself."""
        self._database.connections.allow_default_port_from(peer, "migrations to the database")

    def grant_connect(self, grantee: iam.IGrantable) -> None:
        """``rds-db:connect`` as the app role, on the proxy (standard) or the cluster (economy); no secret."""
        if self.proxy is not None:
            self.proxy.grant_connect(grantee, APP_USER)
        else:
            assert self.cluster is not None
            self.cluster.grant_connect(grantee, APP_USER)

    def grant_admin(self, grantee: iam.IGrantable) -> None:
        """Let ``grantee`` (the migrate function) read the owner's credentials: GetSecretValue, which is all
        Powertools Parameters calls (no DescribeSecret)."""
        iam.Grant.add_to_principal(
            grantee=grantee, actions=["secretsmanager:GetSecretValue"], resource_arns=[self.secret.secret_arn]
        )

    def environment(self) -> dict[str, str]:
        """What the serving functions connect with: the app role, an IAM token per connection."""
        return {
            env_name("db", "host"): self.app_host,
            env_name("db", "iam_user"): APP_USER,
            env_name("db", "name"): self.db_name,
            # RDS Proxy pins a connection that uses server-side prepared statements.
            env_name(None, "disable_prepared_statements"): "true",
            env_name(None, "run_migrations"): "false",
        }

    def admin_environment(self) -> dict[str, str]:
        """What the migrate function connects with: the owner, from the secret, to the database itself; and
        the role the migrations create and grant."""
        return {
            env_name("db", "host"): self.admin_host,
            env_name("db", "secret_arn"): self.secret.secret_arn,
            env_name("db", "name"): self.db_name,
            env_name("db", "app_role"): APP_USER,
            env_name(None, "disable_prepared_statements"): "true",
            env_name(None, "run_migrations"): "false",
        }
