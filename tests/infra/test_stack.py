"""What the synthesized stack must guarantee, pinned on the real template (one synth per session)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk import Validations
from aws_cdk.assertions import Match, Template

from infra.agent_loop import DEFAULT_ITERATION_CAP, LAMBDA_SERVICE_ERRORS
from infra.config import DeployConfig
from infra.service_function import ENI_ACTIONS
from tests.infra.conftest import Synthesized


def _ref_name(value: Any) -> str:
    """The logical id ``value`` refers to (``Ref`` or ``Fn::GetAtt``), else ""."""
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return ""


def _function(s: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    found = [
        (k, v) for k, v in s.resources("AWS::Lambda::Function").items() if v["Properties"].get("Handler") == handler
    ]
    assert len(found) == 1, handler
    return found[0]


def _definition(s: Synthesized) -> dict[str, Any]:
    """The state machine's ASL with every CloudFormation reference replaced by its logical id."""
    _, machine = s.one("AWS::StepFunctions::StateMachine", "AgentLoop")
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else f"<{_ref_name(p)}>" for p in parts))


def _policies_of_role(s: Synthesized, role_id: str) -> list[dict[str, Any]]:
    return [
        p["Properties"]
        for p in s.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]


# --- cdk-nag -------------------------------------------------------------------------------


def test_cdk_nag_aws_solutions_passes_with_reasons(synthesized: Synthesized) -> None:
    report = json.loads((synthesized.outdir / "validation-report.json").read_text())
    nag = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag and nag[0]["conclusion"] == "success"
    assert nag[0]["violations"] == []

    acknowledged: dict[str, str] = {}
    for construct in synthesized.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                acknowledged.update(entry.data)
    nag_rules = {rule: reason for rule, reason in acknowledged.items() if "AwsSolutions-" in rule}
    assert nag_rules, "expected the suppressions made in infra/ to be recorded"
    for rule, reason in nag_rules.items():
        assert len(reason) > 30, f"{rule} is suppressed without a real reason: {reason!r}"
    # Blanket suppressions would hide new findings; only these few are whole-rule.
    whole_rule = {rule.split("::", 1)[-1] for rule in nag_rules if "[" not in rule}
    assert whole_rule <= {
        "AwsSolutions-L1", "AwsSolutions-RDS3", "AwsSolutions-RDS10", "AwsSolutions-RDS11", "AwsSolutions-VPC3",
        "AwsSolutions-SMG4", "AwsSolutions-APIG2", "AwsSolutions-APIG3", "AwsSolutions-APIG4",
        "AwsSolutions-COG4",
        # on the files bucket (no access logs) and on the ingest queue's dead-letter queue (infra/files.py)
        "AwsSolutions-S1", "AwsSolutions-SQS3",
    }  # fmt: skip


# --- database ------------------------------------------------------------------------------


def test_database_is_encrypted_private_tls_only_and_snapshotted_on_delete(synthesized: Synthesized) -> None:
    template = Template.from_json(synthesized.template)
    template.has_resource_properties(
        "AWS::RDS::DBInstance",
        {
            "Engine": "postgres",
            "EngineVersion": Match.string_like_regexp(r"^1[67]\."),
            "StorageEncrypted": True,
            "PubliclyAccessible": False,
            # off by default so a failed first deploy can roll back (o:dbDeletionProtection turns it on;
            # tests/infra/test_app_entrypoint.py)
            "DeletionProtection": False,
        },
    )
    template.has_resource("AWS::RDS::DBInstance", {"DeletionPolicy": "Snapshot", "UpdateReplacePolicy": "Snapshot"})
    template.has_resource_properties(
        "AWS::RDS::DBParameterGroup", {"Parameters": Match.object_like({"rds.force_ssl": "1"})}
    )
    template.has_resource_properties("AWS::RDS::DBProxy", {"RequireTLS": True, "EngineFamily": "POSTGRESQL"})
    template.resource_count_is("AWS::SecretsManager::RotationSchedule", 1)


def test_database_subnets_have_no_route_out(synthesized: Synthesized) -> None:
    _, group = synthesized.one("AWS::RDS::DBSubnetGroup")
    subnet_ids = {_ref_name(s) for s in group["Properties"]["SubnetIds"]}
    assert subnet_ids and all("data" in s for s in subnet_ids)
    tables = {
        _ref_name(a["Properties"]["RouteTableId"])
        for a in synthesized.resources("AWS::EC2::SubnetRouteTableAssociation").values()
        if _ref_name(a["Properties"]["SubnetId"]) in subnet_ids
    }
    routes = [
        r for r in synthesized.resources("AWS::EC2::Route").values()
        if _ref_name(r["Properties"]["RouteTableId"]) in tables
    ]  # fmt: skip
    assert routes == [], "the database subnets must not route to a NAT or internet gateway"


def test_only_the_proxy_reaches_the_database_and_only_functions_reach_the_proxy(
    synthesized: Synthesized,
) -> None:
    ingress = [i["Properties"] for i in synthesized.resources("AWS::EC2::SecurityGroupIngress").values()]

    def sources(group_prefix: str) -> set[str]:
        return {
            _ref_name(i["SourceSecurityGroupId"]) or "?"
            for i in ingress
            if (_ref_name(i["GroupId"]) or "").startswith(group_prefix)
        }

    # The hosted rotation function and the migrations (as the owner) are the only other clients of the instance.
    db_sources = sources("DatabaseInstanceSecurityGroup")
    assert any(s.startswith("DatabaseProxySecurityGroup") for s in db_sources)
    assert any(s.startswith("NetworkMigrations") for s in db_sources)
    assert all(
        s.startswith(("DatabaseProxySecurityGroup", "DatabaseInstanceRotation", "NetworkMigrations"))
        for s in db_sources
    )
    assert {s[: len("NetworkFunctions")] for s in sources("DatabaseProxySecurityGroup")} == {"NetworkFunctions"}
    for group in synthesized.resources("AWS::EC2::SecurityGroup").values():
        for rule in group["Properties"].get("SecurityGroupIngress", []):
            assert rule.get("CidrIp") != "0.0.0.0/0"


# --- functions, sandbox, migrations ---------------------------------------------------------


def test_every_function_is_arm64_with_the_one_layer(synthesized: Synthesized) -> None:
    layers = synthesized.resources("AWS::Lambda::LayerVersion")
    assert len(layers) == 1
    layer_id = next(iter(layers))
    functions = [
        fn for fn in synthesized.resources("AWS::Lambda::Function").values()
        if fn["Properties"]["Handler"].startswith("functions.")
    ]  # fmt: skip
    assert len(functions) == 9
    for fn in functions:
        props = fn["Properties"]
        assert props["Architectures"] == ["arm64"]
        assert props["Runtime"] == "python3.12"
        assert props["Layers"] == [{"Ref": layer_id}]
        assert props["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"].startswith("o-")


def test_database_functions_run_in_private_subnets_with_connection_info(synthesized: Synthesized) -> None:
    for handler in (
        "functions.api.handler.handler",
        "functions.agent_step.handler.handler",
        "functions.migrate.handler.handler",
        "functions.sleeptime.handler.handler",
        "functions.evolution.handler.handler",
        "functions.dead_letters.handler.handler",
    ):
        _, fn = _function(synthesized, handler)
        props = fn["Properties"]
        subnets = {_ref_name(s) for s in props["VpcConfig"]["SubnetIds"]}
        assert subnets and all("app" in s for s in subnets), handler
        env = props["Environment"]["Variables"]
        assert env["O_DB_NAME"] == "o"
        assert env["O_DISABLE_PREPARED_STATEMENTS"] == "true"
        assert "O_DATABASE_URL" not in env
        if handler.startswith("functions.migrate"):
            # the owner, straight to the instance, with its secret; it creates the app role
            assert _ref_name(env["O_DB_HOST"]).startswith("DatabaseInstance")
            assert "O_DB_SECRET_ARN" in env and env["O_DB_APP_ROLE"] == "o_app" and "O_DB_IAM_USER" not in env
        else:
            # the app role through the proxy with an IAM token: no secret
            assert _ref_name(env["O_DB_HOST"]).startswith("DatabaseInstanceProxy")
            assert env["O_DB_IAM_USER"] == "o_app" and "O_DB_SECRET_ARN" not in env
        # The offline embedder reads its model from the layer, mounted at /opt.
        assert env["O_EMBEDDING_MODEL_PATH"] == "/opt/models/model.onnx"
        assert env["O_EMBEDDING_TOKENIZER_PATH"] == "/opt/models/tokenizer.json"


def test_tool_sandbox_code_can_only_write_its_own_logs(synthesized: Synthesized) -> None:
    _, fn = _function(synthesized, "functions.tool_sandbox.handler.handler")
    props = fn["Properties"]
    assert props.get("TracingConfig") is None
    env = props["Environment"]["Variables"]
    assert not [k for k in env if k.startswith("O_") and k != "O_RUNTIME"], "no secrets or DB info"
    role_id = _ref_name(props["Role"])
    role = synthesized.template["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role
    assert "Policies" not in role
    policies = _policies_of_role(synthesized, role_id)
    assert len(policies) == 1
    own_logs, eni, deny = policies[0]["PolicyDocument"]["Statement"]
    assert own_logs["Effect"] == "Allow"
    assert sorted(own_logs["Action"]) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    assert _ref_name(own_logs["Resource"]) == _ref_name(props["LoggingConfig"]["LogGroup"])
    # Lambda attaches the function to its subnets with these (what AWSLambdaVPCAccessExecutionRole grants
    # besides logs)...
    assert eni["Effect"] == "Allow" and eni["Resource"] == "*"
    assert sorted(eni["Action"]) == sorted(ENI_ACTIONS)
    assert all(action.startswith("ec2:") for action in eni["Action"])
    # ...and every call made from the function's own code carries its ARN: denied unless it writes its logs.
    assert deny == {
        "Effect": "Deny",
        "NotAction": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": "*",
        "Condition": {"Null": {"lambda:SourceFunctionArn": "false"}},
    }


def _sandbox_network(s: Synthesized) -> tuple[set[str], str]:
    """The sandbox function's subnets and its one security group (logical ids)."""
    _, fn = _function(s, "functions.tool_sandbox.handler.handler")
    vpc_config = fn["Properties"]["VpcConfig"]
    subnets = {_ref_name(x) for x in vpc_config["SubnetIds"]}
    (group,) = [_ref_name(g) for g in vpc_config["SecurityGroupIds"]]
    return subnets, group


def _route_tables(s: Synthesized, subnets: set[str]) -> set[str]:
    return {
        _ref_name(a["Properties"]["RouteTableId"])
        for a in s.resources("AWS::EC2::SubnetRouteTableAssociation").values()
        if _ref_name(a["Properties"]["SubnetId"]) in subnets
    }


def test_tool_sandbox_subnets_are_isolated_with_no_route_anywhere(
    synthesized: Synthesized,
) -> None:
    subnets, _ = _sandbox_network(synthesized)
    assert len(subnets) == 2 and all(x.startswith("NetworkVpcsandbox") for x in subnets)
    for subnet in subnets:
        tags = {t["Key"]: t["Value"] for t in synthesized.template["Resources"][subnet]["Properties"]["Tags"]}
        assert tags["aws-cdk:subnet-type"] == "Isolated"
    tables = _route_tables(synthesized, subnets)
    assert len(tables) == 2
    # no route to a NAT or internet gateway...
    routes = [r for r in synthesized.resources("AWS::EC2::Route").values()
              if _ref_name(r["Properties"]["RouteTableId"]) in tables]  # fmt: skip
    assert routes == []
    # ...nor to a gateway endpoint, and no interface endpoint lives in them
    for endpoint in synthesized.resources("AWS::EC2::VPCEndpoint").values():
        props = endpoint["Properties"]
        assert not tables & {_ref_name(t) for t in props.get("RouteTableIds", [])}
        assert not subnets & {_ref_name(x) for x in props.get("SubnetIds", [])}


def test_tool_sandbox_subnets_sit_behind_a_network_acl_that_drops_every_packet(synthesized: Synthesized) -> None:
    subnets, _ = _sandbox_network(synthesized)
    # a network ACL with no entry denies every packet, in and out
    associations = [
        a["Properties"] for a in synthesized.resources("AWS::EC2::SubnetNetworkAclAssociation").values()
        if _ref_name(a["Properties"]["SubnetId"]) in subnets
    ]  # fmt: skip
    acls = {_ref_name(a["NetworkAclId"]) for a in associations}
    assert len(associations) == 2 and len(acls) == 1
    entries = [e for e in synthesized.resources("AWS::EC2::NetworkAclEntry").values()
               if _ref_name(e["Properties"]["NetworkAclId"]) in acls]  # fmt: skip
    assert entries == []


# The rule CDK writes for allowAllOutbound=false: CloudFormation would give a group with no egress rule
# an allow-all one, so CDK adds one that matches no packet.
MATCHES_NOTHING = {"CidrIp": "255.255.255.255/32", "Description": "Disallow all traffic", "FromPort": 252,
                   "IpProtocol": "icmp", "ToPort": 86}  # fmt: skip


def test_tool_sandbox_security_group_lets_nothing_out_and_nothing_admits_it(synthesized: Synthesized) -> None:
    subnets, group_id = _sandbox_network(synthesized)
    group = synthesized.template["Resources"][group_id]["Properties"]
    assert group["SecurityGroupEgress"] == [MATCHES_NOTHING]
    assert "SecurityGroupIngress" not in group
    # no separate rule on the group, and no rule anywhere (database, proxy, endpoints) with it as a peer
    for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        for rule in synthesized.resources(kind).values():
            assert group_id not in json.dumps(rule["Properties"]), rule
    # the interface endpoints admit HTTPS from the app subnets only, not the whole VPC
    sandbox_cidrs = {synthesized.template["Resources"][x]["Properties"]["CidrBlock"] for x in subnets}
    app_cidrs = {
        v["Properties"]["CidrBlock"] for k, v in synthesized.resources("AWS::EC2::Subnet").items()
        if k.startswith("NetworkVpcapp")
    }  # fmt: skip
    endpoint_groups = {
        _ref_name(g)
        for e in synthesized.resources("AWS::EC2::VPCEndpoint").values()
        for g in e["Properties"].get("SecurityGroupIds", [])
    }
    assert endpoint_groups
    for endpoint_group in endpoint_groups:
        ingress = synthesized.template["Resources"][endpoint_group]["Properties"]["SecurityGroupIngress"]
        assert {rule["CidrIp"] for rule in ingress} == app_cidrs
        assert {(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in ingress} == {("tcp", 443, 443)}
        assert not sandbox_cidrs & app_cidrs


def test_tool_sandbox_concurrency_is_capped(synthesized: Synthesized) -> None:
    _, fn = _function(synthesized, "functions.tool_sandbox.handler.handler")
    assert fn["Properties"]["ReservedConcurrentExecutions"] == DeployConfig().sandbox_concurrency == 20
    others = [
        v for v in synthesized.resources("AWS::Lambda::Function").values()
        if v["Properties"]["Handler"] != "functions.tool_sandbox.handler.handler"
    ]  # fmt: skip
    assert all("ReservedConcurrentExecutions" not in v["Properties"] for v in others)


def test_only_the_functions_that_run_user_tools_may_invoke_the_sandbox(synthesized: Synthesized) -> None:
    sandbox_id, _ = _function(synthesized, "functions.tool_sandbox.handler.handler")
    invokers = set()
    for role in ("api", "agent_step", "evolution", "sleeptime", "migrate"):
        _, fn = _function(synthesized, f"functions.{role}.handler.handler")
        for statement in _statements(synthesized, fn):
            if sandbox_id in json.dumps(statement["Resource"]):
                assert statement["Action"] == "lambda:InvokeFunction"
                assert statement["Resource"] == {"Fn::GetAtt": [sandbox_id, "Arn"]}, "no version wildcard"
                invokers.add(role)
    assert invokers == {"api", "agent_step", "evolution"}


def test_migrations_run_on_deploy_before_serving_code(synthesized: Synthesized) -> None:
    run_id, run = synthesized.one("Custom::OSchemaMigrations")
    migrate_id, _ = _function(synthesized, "functions.migrate.handler.handler")
    assert _ref_name(run["Properties"]["ServiceToken"]) == migrate_id
    assert len(run["Properties"]["CodeFingerprint"]) == 32
    # CloudFormation stops waiting for an answer a minute after the function's timeout, not after an hour
    _, migrate = _function(synthesized, "functions.migrate.handler.handler")
    assert int(run["Properties"]["ServiceTimeout"]) == migrate["Properties"]["Timeout"] + 60
    assert any(d.startswith("DatabaseInstanceProxy") for d in run["DependsOn"])
    for handler in ("functions.api.handler.handler", "functions.agent_step.handler.handler"):
        _, fn = _function(synthesized, handler)
        assert run_id in fn["DependsOn"], handler


# --- rollout and API --------------------------------------------------------------------------


def test_the_api_alias_is_cloudformations_and_the_step_alias_is_routed_by_the_runtime(
    synthesized: Synthesized,
) -> None:
    api_id, _ = _function(synthesized, "functions.api.handler.handler")
    step_id, _ = _function(synthesized, "functions.agent_step.handler.handler")
    # the API's live alias: CloudFormation points it at the version each deploy publishes
    ((_, api_alias),) = synthesized.resources("AWS::Lambda::Alias").items()
    props = api_alias["Properties"]
    assert props["Name"] == "live" and _ref_name(props["FunctionName"]) == api_id
    assert "RoutingConfig" not in props
    version = synthesized.template["Resources"][_ref_name(props["FunctionVersion"])]
    assert version["Type"] == "AWS::Lambda::Version" and version["Properties"]["FunctionName"] == props["FunctionName"]
    # the agent step's: a custom resource that moves only the primary version, so a deploy never resets a canary
    ((_, step_alias),) = synthesized.resources("Custom::OLiveAlias").items()
    owner = synthesized.template["Resources"][_ref_name(step_alias["Properties"]["ServiceToken"])]
    assert owner["Properties"]["Handler"] == "functions.alias.handler.handler"
    assert _ref_name(step_alias["Properties"]["FunctionName"]) == step_id
    step_version = synthesized.template["Resources"][_ref_name(step_alias["Properties"]["Version"])]
    assert step_version["Type"] == "AWS::Lambda::Version"
    # the agent loop waits for the alias it invokes
    _, machine = synthesized.one("AWS::StepFunctions::StateMachine", "AgentLoop")
    assert any(dep.startswith("RolloutAgentStepLiveAlias") for dep in machine.get("DependsOn", []))


def test_api_gateway_calls_the_api_alias_with_throttling_and_access_logs(synthesized: Synthesized) -> None:
    api_alias = next(k for k in synthesized.resources("AWS::Lambda::Alias") if k.startswith("RolloutApi"))
    methods = synthesized.resources("AWS::ApiGateway::Method")
    assert methods
    streaming, _ = synthesized.one("AWS::Lambda::Function", "ApiStreamFunction")
    for method in methods.values():
        integration = method["Properties"]["Integration"]
        if integration.get("ResponseTransferMode") == "STREAM":  # /stream: tests/infra/test_api_stream.py
            continue
        assert {"Ref": api_alias} in integration["Uri"]["Fn::Join"][1]
    permissions = [
        p["Properties"] for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "apigateway.amazonaws.com"
    ]  # fmt: skip
    invoked = ({"Ref": api_alias}, {"Fn::GetAtt": [streaming, "Arn"]})
    assert permissions and all(p["FunctionName"] in invoked for p in permissions)

    _, stage = synthesized.one("AWS::ApiGateway::Stage")
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "DestinationArn" in props["AccessLogSetting"]
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 100
    assert settings["ThrottlingBurstLimit"] == 200
    assert settings["LoggingLevel"] == "ERROR"
    _, rest_api = synthesized.one("AWS::ApiGateway::RestApi")
    assert rest_api["Properties"]["EndpointConfiguration"]["Types"] == ["REGIONAL"]

    _, fn = _function(synthesized, "functions.api.handler.handler")
    env = fn["Properties"]["Environment"]["Variables"]
    assert env["O_MAX_BODY_BYTES"] == "1048576"
    assert fn["Properties"]["Timeout"] <= 29


# --- agent loop ---------------------------------------------------------------------------------


def test_state_machine_is_standard_logged_traced_and_invokes_the_step_alias(synthesized: Synthesized) -> None:
    _, machine = synthesized.one("AWS::StepFunctions::StateMachine", "AgentLoop")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["TracingConfiguration"] == {"Enabled": True}
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["StateMachineName"] == "O-agent-loop"

    definition = _definition(synthesized)
    assert "QueryLanguage" not in definition, "JSONPath (the default), so moto can run it"
    step_id, _ = _function(synthesized, "functions.agent_step.handler.handler")
    for name in ("Step", "Tools", "AwaitApproval", "MarkFailed"):
        state = definition["States"][name]
        assert state["Parameters"]["FunctionName"] == f"<{step_id}>:live"
        errors = {e for retry in state["Retry"] for e in retry["ErrorEquals"]}
        assert set(LAMBDA_SERVICE_ERRORS) <= errors
        assert all(r["BackoffRate"] >= 2 and r["MaxAttempts"] >= 2 for r in state["Retry"])
    # Past the retries, a failure marks the run failed (MarkFailed, action "fail") and then fails.
    for name in ("Step", "Tools", "AwaitApproval", "ContinueAsNew"):
        assert definition["States"][name]["Catch"] == [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}
        ]
    assert definition["States"]["MarkFailed"]["Parameters"]["Payload"]["action"] == "fail"
    assert definition["States"]["MarkFailed"]["Next"] == "RunFailed"
    assert definition["States"]["RunFailed"]["Type"] == "Fail"
    assert "TimeoutSeconds" not in definition["States"]["AwaitApproval"], "approvals wait unless configured"
    assert definition["States"]["AwaitApproval"]["Resource"].endswith("lambda:invoke.waitForTaskToken")
    assert definition["States"]["AwaitApproval"]["Parameters"]["Payload"]["task_token.$"] == "$$.Task.Token"

    continue_as_new = definition["States"]["ContinueAsNew"]
    assert continue_as_new["Resource"] == "arn:aws:states:::states:startExecution"
    assert continue_as_new["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id"
    assert continue_as_new["Parameters"]["Input"]["iteration"] == 0
    cap_rule = definition["States"]["Route"]["Choices"][2]
    assert {"Variable": "$.iteration", "NumericLessThan": DEFAULT_ITERATION_CAP} in cap_rule["And"]


def test_state_machine_role_may_restart_itself_and_invoke_only_the_step_alias(synthesized: Synthesized) -> None:
    _, machine = synthesized.one("AWS::StepFunctions::StateMachine", "AgentLoop")
    role_id = _ref_name(machine["Properties"]["RoleArn"])
    statements = [s for p in _policies_of_role(synthesized, role_id) for s in p["PolicyDocument"]["Statement"]]
    start = [s for s in statements if s["Action"] == "states:StartExecution"]
    assert len(start) == 1
    assert "stateMachine:O-agent-loop" in json.dumps(start[0]["Resource"])
    invoke = [s for s in statements if "lambda:InvokeFunction" in json.dumps(s["Action"])]
    assert len(invoke) == 1
    step_id, _ = _function(synthesized, "functions.agent_step.handler.handler")
    # the live alias only: never the function itself or another of its versions
    assert invoke[0]["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [step_id, "Arn"]}, ":live"]]}


def test_api_may_start_runs_and_answer_approvals(synthesized: Synthesized) -> None:
    _, fn = _function(synthesized, "functions.api.handler.handler")
    env = fn["Properties"]["Environment"]["Variables"]
    machine_id, _ = synthesized.one("AWS::StepFunctions::StateMachine", "AgentLoop")
    assert env["O_AGENT_STATE_MACHINE_ARN"] == {"Ref": machine_id}
    actions = json.dumps(
        [s["Action"] for p in _policies_of_role(synthesized, _ref_name(fn["Properties"]["Role"]))
         for s in p["PolicyDocument"]["Statement"]]
    )  # fmt: skip
    for action in ("states:StartExecution", "states:SendTaskSuccess"):
        assert action in actions
    # what o/aws/stepfunctions.py calls, and nothing more
    assert "SendTaskFailure" not in actions and "SendTaskHeartbeat" not in actions


def test_llm_keys_reach_the_agent_step(synthesized: Synthesized) -> None:
    secret_id, _ = synthesized.one("AWS::SecretsManager::Secret", "LlmKeys")
    _, fn = _function(synthesized, "functions.agent_step.handler.handler")
    assert fn["Properties"]["Environment"]["Variables"]["O_LLM_KEYS_SECRET_ARN"] == {"Ref": secret_id}
    sandbox_id, _ = _function(synthesized, "functions.tool_sandbox.handler.handler")
    assert fn["Properties"]["Environment"]["Variables"]["O_SANDBOX_FUNCTION_NAME"] == {
        "Fn::GetAtt": [sandbox_id, "Arn"]
    }


# --- network, schedules, observability --------------------------------------------------------


def test_aws_apis_are_reached_through_vpc_endpoints(synthesized: Synthesized) -> None:
    services = json.dumps(
        [e["Properties"]["ServiceName"] for e in synthesized.resources("AWS::EC2::VPCEndpoint").values()]
    )
    for service in ("secretsmanager", "states", "lambda", "s3"):
        assert f".{service}" in services, service
    Template.from_json(synthesized.template).resource_count_is("AWS::EC2::FlowLog", 1)


def test_sleeptime_schedule_targets_the_sleeptime_function(synthesized: Synthesized) -> None:
    _, group = synthesized.one("AWS::Scheduler::ScheduleGroup")
    _, schedule = synthesized.one("AWS::Scheduler::Schedule")
    props = schedule["Properties"]
    assert props["GroupName"] == group["Properties"]["Name"] == "O-sleeptime"
    assert props["ScheduleExpression"] == "rate(1 hour)"
    sleeptime_id, _ = _function(synthesized, "functions.sleeptime.handler.handler")
    assert props["Target"]["Arn"] == {"Fn::GetAtt": [sleeptime_id, "Arn"]}
    assert json.loads(props["Target"]["Input"])["kind"] == "sleeptime"


def test_alarms_watch_each_live_alias_and_the_loop(synthesized: Synthesized) -> None:
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms:
        by_metric.setdefault(alarm["MetricName"], []).append(alarm)
    assert len([a for a in by_metric["ExecutionsFailed"]]) == 2
    for metric in ("Errors", "Throttles", "Duration"):
        resources = [d["Value"] for a in by_metric[metric] for d in a["Dimensions"] if d["Name"] == "Resource"]
        assert sum("live" in json.dumps(r) for r in resources) == 2, metric
    # the dimensions Lambda reports an alias's metrics under: the function, and the alias as Resource
    step_id, _ = _function(synthesized, "functions.agent_step.handler.handler")
    (step_errors,) = [a for a in by_metric["Errors"] if step_id in json.dumps(a["Dimensions"])]
    assert sorted(step_errors["Dimensions"], key=lambda d: d["Name"]) == [
        {"Name": "FunctionName", "Value": {"Ref": step_id}},
        {"Name": "Resource", "Value": {"Fn::Join": ["", [{"Ref": step_id}, ":live"]]}},
    ]
    assert "ExecutionsFailed" in by_metric and "5XXError" in by_metric
    Template.from_json(synthesized.template).resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_an_alarm_says_when_the_ingest_queue_gave_work_up(synthesized: Synthesized) -> None:
    """Its dead letters are consumed at once (their depth rarely shows) and SQS never counts a redrive as
    sent: the alarm counts what the dead-letter queue handed out, and watches the functions at both ends."""
    alarms = [a["Properties"] for a in synthesized.resources("AWS::CloudWatch::Alarm").values()]
    (dead_letters,) = [a for a in alarms if a["Namespace"] == "AWS/SQS"]
    assert dead_letters["MetricName"] == "NumberOfMessagesReceived"
    assert (dead_letters["Statistic"], dead_letters["Threshold"]) == ("Sum", 1)
    assert dead_letters["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    queue_id, _ = synthesized.one("AWS::SQS::Queue", "DeadLetters")
    assert dead_letters["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_id, "QueueName"]}}]
    redrive = [q["Properties"]["RedrivePolicy"] for q in synthesized.resources("AWS::SQS::Queue").values()
               if "RedrivePolicy" in q["Properties"]]  # fmt: skip
    assert redrive == [{"deadLetterTargetArn": {"Fn::GetAtt": [queue_id, "Arn"]}, "maxReceiveCount": 5}]
    for handler in ("functions.ingest.handler.handler", "functions.dead_letters.handler.handler"):
        function_id, _ = _function(synthesized, handler)
        watching = {a["MetricName"] for a in alarms if {"Name": "FunctionName", "Value": {"Ref": function_id}}
                    in a.get("Dimensions", [])}  # fmt: skip
        assert watching == {"Errors", "Throttles", "Duration"}, handler


# --- evolution and the template as a whole ----------------------------------------------------


def test_evolution_machine_runs_the_evolution_function_and_may_move_the_step_alias(
    synthesized: Synthesized,
) -> None:
    from o.evolution.statemachine import evolution_definition

    _, machine = synthesized.one("AWS::StepFunctions::StateMachine", "Evolution")
    props = machine["Properties"]
    assert props["StateMachineType"] == "STANDARD"
    assert props["StateMachineName"] == "O-evolution"
    evolution_id, _ = _function(synthesized, "functions.evolution.handler.handler")
    parts = props["DefinitionString"]["Fn::Join"][1]
    rendered = json.loads("".join(p if isinstance(p, str) else "<fn>" for p in parts))
    assert {json.dumps(p) for p in parts if not isinstance(p, str)} == {
        json.dumps({"Fn::GetAtt": [evolution_id, "Arn"]})
    }
    assert rendered == evolution_definition("<fn>")

    step_id, _ = _function(synthesized, "functions.agent_step.handler.handler")
    for handler in ("functions.evolution.handler.handler", "functions.api.handler.handler",
                    "functions.sleeptime.handler.handler"):  # fmt: skip
        _, fn = _function(synthesized, handler)
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["O_EVOLUTION_STEP_FUNCTION_NAME"] == {"Ref": step_id}
        assert env["O_EVOLUTION_STEP_ALIAS"] == "live"
        assert "O-evolution" in json.dumps(env["O_EVOLUTION_STATE_MACHINE_ARN"])
        statements = _statements(synthesized, fn)
        alias = [st for st in statements if "lambda:UpdateAlias" in json.dumps(st["Action"])]
        # the worker runs canaries; the API withdraws one when an evolution is stopped; sleep-time only starts
        assert len(alias) == (0 if "sleeptime" in handler else 1), handler
        if alias:
            assert alias[0]["Resource"] == {"Fn::GetAtt": [step_id, "Arn"]}
            # the API only withdraws a canary: it may publish nothing and change no configuration
            unqualified = {a for st in statements if st["Resource"] == {"Fn::GetAtt": [step_id, "Arn"]}
                           for a in _as_list(st["Action"])}  # fmt: skip
            assert unqualified == (
                {"lambda:GetAlias", "lambda:UpdateAlias"} if "api" in handler else
                {"lambda:GetAlias", "lambda:UpdateAlias", "lambda:PublishVersion", "lambda:GetFunctionConfiguration",
                 "lambda:UpdateFunctionConfiguration"}
            ), handler  # fmt: skip
            qualified = [
                st
                for st in statements
                if st["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [step_id, "Arn"]}, ":*"]]}
            ]
            assert [st["Action"] for st in qualified] == ["lambda:GetFunctionConfiguration"]
        # outcome metrics are EMF log lines; only the worker reads them back
        assert not [st for st in statements if "cloudwatch:PutMetricData" in json.dumps(st["Action"])]
        reads = [st for st in statements if "cloudwatch:GetMetricData" in json.dumps(st["Action"])]
        assert bool(reads) == ("evolution" in handler), handler


def _statements(synthesized: Synthesized, fn: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        st for p in _policies_of_role(synthesized, _ref_name(fn["Properties"]["Role"]))
        for st in p["PolicyDocument"]["Statement"]
    ]  # fmt: skip


def test_agent_step_may_release_an_approval_wait_of_its_own_machine(synthesized: Synthesized) -> None:
    _, step = _function(synthesized, "functions.agent_step.handler.handler")
    statements = [
        st for p in _policies_of_role(synthesized, _ref_name(step["Properties"]["Role"]))
        for st in p["PolicyDocument"]["Statement"]
    ]  # fmt: skip
    release = [st for st in statements if "states:SendTaskSuccess" in json.dumps(st["Action"])]
    assert len(release) == 1
    # task-token actions have no resource-level permissions: a state machine ARN here is AccessDenied
    assert release[0]["Resource"] == "*"


def _references(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        if "Ref" in value and isinstance(value["Ref"], str):
            found.add(value["Ref"])
        if "Fn::GetAtt" in value:
            found.add(value["Fn::GetAtt"][0])
        for inner in value.values():
            found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _find_cycle(resources: dict[str, Any]) -> list[str] | None:
    edges = {
        name: sorted(
            d for d in (_references(body.get("Properties", {})) | set(body.get("DependsOn", [])))
            if d in resources
        )
        for name, body in resources.items()
    }  # fmt: skip
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for node in edges:
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_the_template_has_no_dependency_cycle(synthesized: Synthesized) -> None:
    """CloudFormation rejects a circular dependency only at deploy time; catch it here."""
    assert _find_cycle(synthesized.template["Resources"]) is None
    looped = {
        "Fn": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        "Role": {"Properties": {}, "DependsOn": ["Policy"]},
        "Policy": {"Properties": {"Resource": {"Ref": "Fn"}}},
    }
    assert _find_cycle(looped) == ["Fn", "Role", "Policy", "Fn"]


# --- tool secrets ------------------------------------------------------------------------------


def _kms_statements(synthesized: Synthesized, handler: str) -> list[dict[str, Any]]:
    _, fn = _function(synthesized, handler)
    role = _ref_name(fn["Properties"]["Role"])
    assert role is not None
    return [
        s
        for p in _policies_of_role(synthesized, role)
        for s in p["PolicyDocument"]["Statement"]
        if "kms:" in json.dumps(s.get("Action", []))
    ]


def test_tool_secrets_key_and_who_may_seal_or_open(synthesized: Synthesized) -> None:
    key_id, key = synthesized.one("AWS::KMS::Key", "ToolSecrets")
    assert key["Properties"]["EnableKeyRotation"] is True
    # the final database snapshot holds secrets only this key opens
    assert key["DeletionPolicy"] == "Retain"
    expected = {
        "functions.api.handler.handler": ["kms:GenerateDataKey"],
        "functions.migrate.handler.handler": ["kms:GenerateDataKey"],
        "functions.agent_step.handler.handler": ["kms:Decrypt"],
        "functions.evolution.handler.handler": ["kms:Decrypt"],
        "functions.sleeptime.handler.handler": [],
        "functions.tool_sandbox.handler.handler": [],
    }
    for handler, actions in expected.items():
        statements = _kms_statements(synthesized, handler)
        assert [s["Action"] for s in statements] == actions, handler
        for statement in statements:
            assert statement["Resource"] == {"Fn::GetAtt": [key_id, "Arn"]}
            assert statement["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": "o-tool-secrets"}}
        if actions:
            _, fn = _function(synthesized, handler)
            env = fn["Properties"]["Environment"]["Variables"]
            assert env["O_SECRETS_KMS_KEY_ID"] == {"Fn::GetAtt": [key_id, "Arn"]}


# --- least privilege ----------------------------------------------------------------------------------------

# The only actions granted on "*", each because AWS offers nothing narrower for it.
NO_RESOURCE_LEVEL = {
    # X-Ray's trace and sampling APIs have no resource-level permissions.
    "xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets",
    # Step Functions' log delivery to CloudWatch Logs (vended logs) is authorized on "*" only.
    "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    # A task token stands for the execution: these name no resource.
    "states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat",
    # Metric reads name no resource.
    "cloudwatch:GetMetricData",
    # What Lambda attaches a function to its subnets with; DescribeNetworkInterfaces works on "*" only.
    *ENI_ACTIONS,
}  # fmt: skip
# Roles AWS defines the policy of: API Gateway's account logging role, RDS enhanced monitoring, and CDK's
# provider that empties the VPC's default security group.
MANAGED_POLICY_ROLES = {"ApiRestApiCloudWatchRole", "DatabaseInstanceMonitoringRole", "CustomVpcRestrictDefaultSG"}


def _allow_statements(s: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    found = [(k, st) for k, p in s.resources("AWS::IAM::Policy").items()
             for st in p["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip
    for k, role in s.resources("AWS::IAM::Role").items():
        found += [(k, st) for p in role["Properties"].get("Policies", []) for st in p["PolicyDocument"]["Statement"]]
    return [(k, st) for k, st in found if st["Effect"] == "Allow"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_service_wide_action_and_star_resources_only_where_aws_requires_it(synthesized: Synthesized) -> None:
    for where, statement in _allow_statements(synthesized):
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if a == "*" or a.endswith(":*")], (where, actions)
        if "*" in _as_list(statement["Resource"]):
            assert set(actions) <= NO_RESOURCE_LEVEL, (where, sorted(set(actions) - NO_RESOURCE_LEVEL))


def test_functions_roles_carry_no_managed_policy(synthesized: Synthesized) -> None:
    """AWSLambdaBasicExecutionRole would let a function write every log group in the account."""
    with_managed = {
        k for k, r in synthesized.resources("AWS::IAM::Role").items() if r["Properties"].get("ManagedPolicyArns")
    }
    assert {k for k in with_managed if not k.startswith(tuple(MANAGED_POLICY_ROLES))} == set()
    for fn in synthesized.resources("AWS::Lambda::Function").values():
        if not fn["Properties"]["Handler"].startswith("functions."):
            continue
        role_id = _ref_name(fn["Properties"]["Role"])
        assert role_id not in with_managed
        logs = [st for st in _statements(synthesized, fn) if "logs:PutLogEvents" in _as_list(st.get("Action"))]
        assert [_ref_name(st["Resource"]) for st in logs] == [_ref_name(fn["Properties"]["LoggingConfig"]["LogGroup"])]


def test_nothing_may_attach_or_share_the_layer(synthesized: Synthesized) -> None:
    assert synthesized.resources("AWS::Lambda::LayerVersionPermission") == {}
    layer_actions = [a for _, st in _allow_statements(synthesized) for a in _as_list(st["Action"]) if "Layer" in a]
    assert layer_actions == []


def test_the_migration_function_reads_the_database_secret_and_seals_tool_secrets_and_nothing_else(
    synthesized: Synthesized,
) -> None:
    _, fn = _function(synthesized, "functions.migrate.handler.handler")
    granted = {a for st in _statements(synthesized, fn) if st["Effect"] == "Allow" for a in _as_list(st["Action"])}
    assert granted - set(NO_RESOURCE_LEVEL) - {"logs:CreateLogStream", "logs:PutLogEvents"} <= {
        "secretsmanager:GetSecretValue", "kms:GenerateDataKey"
    }  # fmt: skip


def _port(value: Any, s: Synthesized) -> Any:
    """A rule's port, with the database instance's Endpoint.Port read from its Port property."""
    if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Endpoint.Port":
        return int(s.template["Resources"][value["Fn::GetAtt"][0]]["Properties"]["Port"])
    return value


def test_no_security_group_rule_is_granted_twice(synthesized: Synthesized) -> None:
    seen: dict[str, str] = {}
    for kind in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
        for logical, rule in synthesized.resources(kind).items():
            props = rule["Properties"]
            key = json.dumps(
                [kind, props["GroupId"], props.get("SourceSecurityGroupId"), props.get("DestinationSecurityGroupId"),
                 props.get("CidrIp"), props["IpProtocol"], _port(props.get("FromPort"), synthesized),
                 _port(props.get("ToPort"), synthesized)],
                sort_keys=True,
            )  # fmt: skip
            assert key not in seen, f"{logical} repeats {seen[key]}"
            seen[key] = logical
