"""Who reaches the database, as whom, in both profiles (synthesized templates, cdk-nag on).

The serving functions connect as the app role with an IAM token: their roles may ``rds-db:connect`` as
``o_app`` on the proxy (standard) or the Aurora cluster (economy) and read no database secret; only the
migrate function reads the owner's secret. Economy: Aurora Serverless v2 at 0 ACU with auto-pause and an
RDS-managed owner password, no proxy, no NAT (IPv6 egress through an egress-only internet gateway, or a NAT
instance when asked), no paid interface endpoint, no periodic sleep-time sweep, three alarms, no dashboard.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.config import config_from_context
from tests.infra.conftest import Synthesized
from tests.infra.synth import synth_context

SERVING = (
    "functions.api.handler.handler",
    "functions.agent_step.handler.handler",
    "functions.sleeptime.handler.handler",
    "functions.evolution.handler.handler",
    "functions.dead_letters.handler.handler",
)
MIGRATE = "functions.migrate.handler.handler"


@pytest.fixture(scope="module")
def economy(tmp_path_factory: pytest.TempPathFactory, stub_layer: Path) -> Synthesized:
    from infra.application import create_app

    outdir = tmp_path_factory.mktemp("economy.out")
    context = synth_context(**{"o:layerDir": str(stub_layer), "profile": "economy"})
    app, stack = create_app(context, outdir=str(outdir), code_out=tmp_path_factory.mktemp("code") / "code", environ={})
    template = app.synth().get_stack_by_name(stack.stack_name).template  # cdk-nag findings raise here
    return Synthesized(app=app, stack=stack, template=template, outdir=outdir)


def _ref(value: Any) -> str:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return ""


def _role_statements(s: Synthesized, handler: str) -> list[dict[str, Any]]:
    (fn,) = [f for f in s.resources("AWS::Lambda::Function").values() if f["Properties"].get("Handler") == handler]
    role = _ref(fn["Properties"]["Role"])
    return [
        st
        for p in s.resources("AWS::IAM::Policy").values()
        if role in [_ref(r) for r in p["Properties"].get("Roles", [])]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def _connect_targets(s: Synthesized, handler: str) -> list[str]:
    """The rds-db:connect resources of ``handler``'s role, as JSON text (they are Fn::Join expressions)."""
    return [json.dumps(st["Resource"]) for st in _role_statements(s, handler) if "rds-db:connect" in _actions(st)]


def _secret_reads(s: Synthesized, handler: str) -> list[str]:
    return [json.dumps(st["Resource"]) for st in _role_statements(s, handler)
            if any(a.startswith("secretsmanager:") for a in _actions(st))]  # fmt: skip


def _database_secret(s: Synthesized) -> str:
    """The logical id the owner's secret ARN comes from: CDK's secret attachment (standard) or the cluster
    whose RDS-managed secret it is (economy, ``Fn::GetAtt <cluster>.MasterUserSecret.SecretArn``)."""
    attachments = list(s.resources("AWS::SecretsManager::SecretTargetAttachment"))
    if attachments:
        (attachment,) = attachments
        return attachment
    (cluster,) = s.resources("AWS::RDS::DBCluster")
    return cluster


def _check_access(s: Synthesized, target: str) -> None:
    secret = _database_secret(s)
    for handler in SERVING:
        (connect,) = _connect_targets(s, handler)
        assert target in connect and connect.endswith('"/o_app"]]}'), (handler, connect)
        assert all(secret not in read for read in _secret_reads(s, handler)), handler
        assert "O_DB_SECRET_ARN" not in json.dumps(_environment(s, handler))
    assert _connect_targets(s, MIGRATE) == [], "the migrations connect as the owner, with its password"
    (read,) = [st for st in _role_statements(s, MIGRATE) if any(a.startswith("secretsmanager:") for a in _actions(st))]
    assert _actions(read) == ["secretsmanager:GetSecretValue"] and _ref(read["Resource"]) == secret


def _environment(s: Synthesized, handler: str) -> dict[str, Any]:
    (fn,) = [f for f in s.resources("AWS::Lambda::Function").values() if f["Properties"].get("Handler") == handler]
    return dict(fn["Properties"]["Environment"]["Variables"])


def test_standard_proxy_requires_tls_and_iam_and_logs_in_with_iam(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template)
    template.has_resource_properties(
        "AWS::RDS::DBProxy", {"RequireTLS": True, "DefaultAuthScheme": "IAM_AUTH", "Auth": Match.absent()}
    )
    template.has_resource_properties("AWS::RDS::DBInstance", {"EnableIAMDatabaseAuthentication": True})
    # the proxy's own role may connect to the instance as the app role, and nothing else
    (proxy_id, proxy) = next(iter(synthesized.resources("AWS::RDS::DBProxy").items()))
    role = _ref(proxy["Properties"]["RoleArn"])
    (statement,) = [st for p in synthesized.resources("AWS::IAM::Policy").values()
                    if role in [_ref(r) for r in p["Properties"]["Roles"]]
                    for st in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip
    assert statement["Action"] == "rds-db:connect"
    assert "DbiResourceId" in json.dumps(statement["Resource"]) and json.dumps(statement["Resource"]).endswith(
        '"/o_app"]]}'
    )
    assert proxy_id


def test_standard_functions_connect_as_the_app_role_on_the_proxy_and_only_migrate_reads_the_secret(
    synthesized: Synthesized,
) -> None:
    (proxy_id,) = synthesized.resources("AWS::RDS::DBProxy")
    _check_access(synthesized, proxy_id)


def test_economy_is_aurora_serverless_that_pauses_with_no_proxy(economy: Synthesized) -> None:
    template = Template.from_json(economy.template)
    template.has_resource_properties(
        "AWS::RDS::DBCluster",
        {
            "Engine": "aurora-postgresql",
            "ServerlessV2ScalingConfiguration": {"MinCapacity": 0, "MaxCapacity": 4, "SecondsUntilAutoPause": 300},
            "StorageEncrypted": True,
            "EnableIAMDatabaseAuthentication": True,
        },
    )
    template.has_resource_properties("AWS::RDS::DBInstance", {"DBInstanceClass": "db.serverless"})
    # TLS only; and frozen Lambda environments' idle connections are closed, or they would keep it from pausing
    template.has_resource_properties(
        "AWS::RDS::DBClusterParameterGroup",
        {"Parameters": Match.object_like({"rds.force_ssl": "1", "idle_session_timeout": "60000"})},
    )
    template.resource_count_is("AWS::RDS::DBProxy", 0)
    # RDS keeps and rotates the owner's password itself: no CDK secret, no rotation function (which could not
    # reach Secrets Manager from subnets whose only way out is IPv6)
    template.has_resource_properties(
        "AWS::RDS::DBCluster", {"ManageMasterUserPassword": True, "MasterUserPassword": Match.absent()}
    )
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 0)
    template.resource_count_is("AWS::Serverless::Application", 0)
    (cluster_id,) = economy.resources("AWS::RDS::DBCluster")
    _check_access(economy, cluster_id)
    assert _environment(economy, MIGRATE)["O_DB_SECRET_ARN"] == {
        "Fn::GetAtt": [cluster_id, "MasterUserSecret.SecretArn"]
    }
    for handler in SERVING:
        assert _ref(_environment(economy, handler)["O_DB_HOST"]) == cluster_id


def _routes_of(s: Synthesized, subnet_ids: set[str]) -> list[dict[str, Any]]:
    associations = s.resources("AWS::EC2::SubnetRouteTableAssociation").values()
    tables = {
        _ref(a["Properties"]["RouteTableId"]) for a in associations if _ref(a["Properties"]["SubnetId"]) in subnet_ids
    }
    assert tables, subnet_ids
    return [r["Properties"] for r in s.resources("AWS::EC2::Route").values()
            if _ref(r["Properties"]["RouteTableId"]) in tables]  # fmt: skip


def _subnets(s: Synthesized, group: str) -> set[str]:
    return {k for k in s.resources("AWS::EC2::Subnet") if f"Vpc{group}Subnet" in k}


def _function(s: Synthesized, handler: str) -> dict[str, Any]:
    (fn,) = [f for f in s.resources("AWS::Lambda::Function").values() if f["Properties"].get("Handler") == handler]
    return dict(fn["Properties"])


def test_economy_goes_out_over_ipv6_with_no_nat_and_nothing_that_polls(economy: Synthesized) -> None:
    template = Template.from_json(economy.template)
    # no NAT of any kind, no public IPv4 address: the app subnets' one way out is the egress-only gateway
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::Instance", 0)
    template.resource_count_is("AWS::EC2::EIP", 0)
    (eigw,) = economy.resources("AWS::EC2::EgressOnlyInternetGateway")
    template.has_resource_properties("AWS::EC2::VPCCidrBlock", {"AmazonProvidedIpv6CidrBlock": True})
    app = _subnets(economy, "app")
    assert len(app) == 2
    for subnet in app:
        routes = _routes_of(economy, {subnet})
        assert [(r.get("DestinationIpv6CidrBlock"), _ref(r.get("EgressOnlyInternetGatewayId"))) for r in routes] == [
            ("::/0", eigw)
        ], routes
    # the database's and the sandbox's subnets route nowhere, over IPv4 or IPv6
    for group in ("data", "sandbox"):
        assert _routes_of(economy, _subnets(economy, group)) == [], group
    # the functions in the app subnets may send IPv6 and call AWS on its dual-stack endpoints; the sandbox not
    for handler in (*SERVING, MIGRATE):
        fn = _function(economy, handler)
        assert fn["VpcConfig"]["Ipv6AllowedForDualStack"] is True, handler
        assert fn["Environment"]["Variables"]["AWS_USE_DUALSTACK_ENDPOINT"] == "true", handler
    sandbox = _function(economy, "functions.tool_sandbox.handler.handler")
    assert "Ipv6AllowedForDualStack" not in sandbox["VpcConfig"]
    assert "AWS_USE_DUALSTACK_ENDPOINT" not in sandbox["Environment"]["Variables"]
    groups = economy.resources("AWS::EC2::SecurityGroup")
    for name in ("NetworkFunctions", "NetworkMigrations"):
        (group,) = [g for k, g in groups.items() if k.startswith(name)]
        assert any(r.get("CidrIpv6") == "::/0" for r in group["Properties"]["SecurityGroupEgress"]), name
    (sandbox_group,) = [g for k, g in groups.items() if k.startswith("NetworkSandbox")]
    assert not any("CidrIpv6" in r for r in sandbox_group["Properties"]["SecurityGroupEgress"])
    endpoints = [e["Properties"] for e in economy.resources("AWS::EC2::VPCEndpoint").values()]
    assert [e.get("VpcEndpointType", "Gateway") for e in endpoints] == ["Gateway"], "only the free S3 gateway"
    # no schedule wakes the paused database
    template.resource_count_is("AWS::Scheduler::Schedule", 0)
    template.resource_count_is("AWS::Events::Rule", 0)


def test_economy_keeps_three_alarms_on_failures_and_no_dashboard(economy: Synthesized) -> None:
    template = Template.from_json(economy.template)
    template.resource_count_is("AWS::CloudWatch::Dashboard", 0)
    alarms = sorted(a["Properties"]["MetricName"] for a in economy.resources("AWS::CloudWatch::Alarm").values())
    assert alarms == ["5XXError", "ExecutionsFailed", "ExecutionsFailed"]


def test_economy_idles_at_its_storage_two_secrets_a_key_and_three_alarms(economy: Synthesized) -> None:
    """What ``bench/cost.py`` prices in the economy template when nothing runs: nothing billed by the hour
    but what holds data or keys (the NAT instance and the alarms + dashboard were $12.5 of $14.4)."""
    from bench.cost import Usage, idle

    items = idle(economy.template, Usage(storage_gb=1.0))
    assert {item for item, cost in items.items() if cost > 0} == {
        "Aurora storage (1 GB)",
        "Secrets Manager x2 (1 RDS-managed)",
        "KMS key x1 (+$1 after each of the first 2 yearly rotations)",
        "CloudWatch alarms x3",
    }, items
    assert round(sum(items.values()), 2) == 2.20


def test_the_dual_stack_setting_gives_every_aws_client_the_functions_make_an_ipv6_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What ``AWS_USE_DUALSTACK_ENDPOINT`` does to the botocore the layer ships: each service the functions
    call resolves to its dual-stack name (``api.aws``; S3 ``s3.dualstack``), so no call needs IPv4."""
    import boto3

    monkeypatch.setenv("AWS_USE_DUALSTACK_ENDPOINT", "true")
    session = boto3.Session(aws_access_key_id="k", aws_secret_access_key="s", region_name="us-east-1")
    hosts = {
        name: session.client(name).meta.endpoint_url  # type: ignore[call-overload]
        for name in ("stepfunctions", "lambda", "secretsmanager", "kms", "cloudwatch", "sts", "s3")
    }
    assert hosts == {
        "stepfunctions": "https://states.us-east-1.api.aws",
        "lambda": "https://lambda.us-east-1.api.aws",
        "secretsmanager": "https://secretsmanager.us-east-1.api.aws",
        "kms": "https://kms.us-east-1.api.aws",
        "cloudwatch": "https://monitoring.us-east-1.api.aws",
        "sts": "https://sts.us-east-1.api.aws",
        "s3": "https://s3.dualstack.us-east-1.amazonaws.com",
    }


@pytest.fixture(scope="module")
def economy_nat(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.infra.synth import synth_template

    context = {"profile": "economy", "o:economyEgress": "natInstance"}
    return synth_template(tmp_path_factory.mktemp("economy-nat"), **context)


def test_economy_with_a_nat_instance_reaches_ipv4_and_admits_only_the_app_subnets(
    economy_nat: dict[str, Any],
) -> None:
    s = Synthesized(app=None, stack=None, template=economy_nat, outdir=Path())
    template = Template.from_json(economy_nat)
    template.resource_count_is("AWS::EC2::NatGateway", 0)
    template.resource_count_is("AWS::EC2::EgressOnlyInternetGateway", 0)
    # one small NAT instance, standard credits (no surplus billing)
    template.has_resource_properties(
        "AWS::EC2::Instance", {"InstanceType": "t4g.nano", "CreditSpecification": {"CPUCredits": "standard"}}
    )
    (nat_group,) = [g for k, g in s.resources("AWS::EC2::SecurityGroup").items() if "NatSecurityGroup" in k]
    app_cidrs = {s["Properties"]["CidrBlock"] for k, s in s.resources("AWS::EC2::Subnet").items() if "app" in k}
    admitted = {rule["CidrIp"] for rule in nat_group["Properties"].get("SecurityGroupIngress", [])}
    assert admitted == app_cidrs and len(app_cidrs) == 2
    # the sandbox stays isolated: its subnets route nowhere, the NAT instance included
    assert _routes_of(s, _subnets(s, "sandbox")) == []
    for handler in (*SERVING, MIGRATE):
        assert "AWS_USE_DUALSTACK_ENDPOINT" not in _function(s, handler)["Environment"]["Variables"]


def test_standard_keeps_its_nat_gateway_and_schedule(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template)
    template.resource_count_is("AWS::EC2::NatGateway", 1)
    template.resource_count_is("AWS::Scheduler::Schedule", 1)
    template.resource_count_is("AWS::RDS::DBCluster", 0)


def test_profiles_and_their_egress_in_the_context() -> None:
    assert config_from_context({}.get).profile == "standard"
    economy = config_from_context({"profile": "economy"}.get)
    assert (economy.nat_gateways, economy.ipv6_egress, economy.nat_instance, economy.interface_endpoints) == (
        0,
        True,
        False,
        False,
    )
    assert economy.sleeptime_schedule is None
    nat = config_from_context({"profile": "economy", "o:economyEgress": "natInstance"}.get)
    assert (nat.ipv6_egress, nat.nat_instance) == (False, True)
    gateway = config_from_context({"o:profile": "economy", "o:natGateways": "1"}.get)
    assert (gateway.ipv6_egress, gateway.nat_instance) == (False, False)
    assert not config_from_context({}.get).ipv6_egress
    with pytest.raises(ValueError, match="o:economyEgress"):
        config_from_context({"profile": "economy", "o:economyEgress": "ipv4"}.get)
    assert config_from_context(
        {"o:profile": "economy", "o:sleeptimeSchedule": "rate(1 day)"}.get
    ).sleeptime_schedule == ("rate(1 day)")
    with pytest.raises(ValueError, match="o:natGateways"):
        config_from_context({"o:natGateways": "0"}.get)
    with pytest.raises(ValueError, match="o:profile"):
        config_from_context({"o:profile": "cheap"}.get)
