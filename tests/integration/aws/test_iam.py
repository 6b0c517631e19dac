"""Every AWS call O's functions make, evaluated against the IAM role the synthesized stack gives them.

moto answers any call from anyone. So this test builds, in moto, the resources of the synthesized
template under the names and ARNs they resolve to; gives each function the environment the template
gives it (references resolved against those resources); runs the real handlers through what a
deployment does — start-up (the database secret), the API (messages, approvals, cancels, tools,
evolutions), the agent step (LLM keys, the sandbox, releasing approvals), the evolution worker (a
canary on the agent step's ``live`` alias, promoted on its metrics), sleep-time and the migrations —
records every call each function makes (tests/iam/recorder.py) and evaluates each against that
function's role policy (tests/iam/policy.py). A call the role does not allow fails the test: on AWS
it would be AccessDenied.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
import requests
from moto import mock_aws

from infra.service_function import DUALSTACK_ENV
from o.agent import lifecycle, runs
from o.evolution import evaluator, loop
from o.evolution.rollout import CANARY_ENV
from o.memory.embeddings import local_model_files
from o.store import messages, orgs
from o.store.db import Database
from tests.cloudformation import request_event, response_sink
from tests.iam.policy import allows
from tests.iam.recorder import Call, Recorder, iam_request
from tests.iam.template import World, function_of, resolve, resources, role_of, role_statements
from tests.infra.synth import synth_template
from tests.integration.evolution import task
from tests.integration.evolution.task import World as Scripted
from tests.lambdas import (
    ACCOUNT,
    LOOPBACK_OPERATOR,
    REGION,
    Context,
    LambdaService,
    acting_as,
    aws_credentials,
    fresh_handler,
    running_as,
    stub_code,
)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, call

# the resource id in the proxy's ARN, which its rds-db:connect ARN names (standard)
PROXY_RESOURCE_ID = "prx-0123456789abcdef0"
# the Aurora cluster's resource id, which its rds-db:connect ARN names (economy: no proxy)
CLUSTER_RESOURCE_ID = "cluster-0123456789ABCDEFGHIJ"
HANDLERS = {
    "api": "functions.api.handler.handler",
    "agent_step": "functions.agent_step.handler.handler",
    "evolution": "functions.evolution.handler.handler",
    "sleeptime": "functions.sleeptime.handler.handler",
    "migrate": "functions.migrate.handler.handler",
    "tool_sandbox": "functions.tool_sandbox.handler.handler",
    "alias": "functions.alias.handler.handler",
    "ingest": "functions.ingest.handler.handler",
    "dead_letters": "functions.dead_letters.handler.handler",
}


@pytest.fixture(scope="module", params=["standard", "economy"])
def template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # economy: the serving functions connect to the Aurora cluster, the migrations read an RDS-managed secret
    return synth_template(tmp_path_factory.mktemp("iam"), profile=request.param)


@dataclass
class Deployment:
    template: dict[str, Any]
    world: World
    functions: dict[str, str]  # role name -> the function's logical id (also its name in moto)
    recorder: Recorder
    lambdas: LambdaService
    database: str

    def environment(self, role: str) -> dict[str, str]:
        props = self.template["Resources"][self.functions[role]]["Properties"]
        variables = resolve(props.get("Environment", {}).get("Variables", {}), self.world)
        return {k: str(v) for k, v in variables.items()}

    def denied(self) -> list[str]:
        found = []
        for call_ in self.recorder.calls:
            if call_.function is None:
                continue
            request = iam_request(call_)
            statements = role_statements(self.template, role_of(self.template, call_.function), self.world)
            if not allows(statements, request):
                found.append(f"{self.role_name(call_)}: {request.action} on {request.resource}")
        return sorted(set(found))

    def role_name(self, call_: Call) -> str:
        return next(role for role, logical in self.functions.items() if logical == call_.function)


def _database_secret(pg_url: str) -> dict[str, Any]:
    parts = urlsplit(pg_url)
    info = psycopg.conninfo.conninfo_to_dict(pg_url)
    return {"engine": "postgres", "username": info.get("user") or parts.username or "postgres",
            "password": "unused-by-local-trust-auth", "host": "db-instance", "port": int(info.get("port") or 5432),
            "dbname": info.get("dbname", "postgres")}  # fmt: skip


def _build_world(template: dict[str, Any], pg_url: str) -> World:
    """The template's resources in moto, named as they resolve: functions by their logical id."""
    world = World(ACCOUNT, REGION)
    lam = boto3.client("lambda", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    role = iam.create_role(RoleName="o-functions", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    for logical in resources(template, "AWS::Lambda::Function"):
        arn = lam.create_function(FunctionName=logical, Runtime="python3.12", Role=role, Handler="h.h",
                                  Code={"ZipFile": stub_code()})["FunctionArn"]  # fmt: skip
        world.refs[logical] = logical
        world.attributes[(logical, "Arn")] = arn
    for logical, resource in resources(template, "AWS::Lambda::Version").items():
        function = resolve(resource["Properties"]["FunctionName"], world)
        world.attributes[(logical, "Version")] = lam.publish_version(FunctionName=function)["Version"]
    for logical, resource in resources(template, "AWS::Lambda::Alias").items():
        function = resolve(resource["Properties"]["FunctionName"], world)
        version = resolve(resource["Properties"]["FunctionVersion"], world)
        alias = lam.create_alias(FunctionName=function, Name=resource["Properties"]["Name"], FunctionVersion=version)
        world.refs[logical] = alias["AliasArn"]
    kms = boto3.client("kms", region_name=REGION)
    for logical in resources(template, "AWS::KMS::Key"):
        key = kms.create_key(Description=logical)["KeyMetadata"]
        world.refs[logical] = key["KeyId"]
        world.attributes[(logical, "Arn")] = key["Arn"]
    sfn = boto3.client("stepfunctions", region_name=REGION)
    passing = json.dumps({"StartAt": "Wait", "States": {"Wait": {"Type": "Pass", "End": True}}})
    for logical, resource in resources(template, "AWS::StepFunctions::StateMachine").items():
        name = resource["Properties"]["StateMachineName"]
        arn = sfn.create_state_machine(name=name, definition=passing, roleArn=role)["stateMachineArn"]
        world.refs[logical] = arn
        world.attributes[(logical, "Name")] = name
    secrets = boto3.client("secretsmanager", region_name=REGION)
    for logical in resources(template, "AWS::SecretsManager::Secret"):
        value = _database_secret(pg_url) if "Database" in logical else {"OPENAI_API_KEY": "sk-from-secrets-manager"}
        world.refs[logical] = secrets.create_secret(Name=logical, SecretString=json.dumps(value))["ARN"]
    for logical, resource in resources(template, "AWS::SecretsManager::SecretTargetAttachment").items():
        world.refs[logical] = resolve(resource["Properties"]["SecretId"], world)
    for logical, resource in resources(template, "AWS::RDS::DBCluster").items():
        # economy: RDS made and keeps the owner's secret; the serving functions reach the cluster itself
        assert resource["Properties"]["ManageMasterUserPassword"] is True
        secret = secrets.create_secret(Name=f"rds!{logical}", SecretString=json.dumps(_database_secret(pg_url)))
        world.attributes[(logical, "MasterUserSecret.SecretArn")] = secret["ARN"]
        world.attributes[(logical, "DBClusterResourceId")] = CLUSTER_RESOURCE_ID
    for logical, resource in resources(template, "AWS::Logs::LogGroup").items():
        # the functions' own log groups (their roles may write them); named by CloudFormation unless set
        name = resource["Properties"].get("LogGroupName", f"O-{logical}")
        world.refs[logical] = name
        world.attributes[(logical, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:*"
    s3 = boto3.client("s3", region_name=REGION)
    for logical in resources(template, "AWS::S3::Bucket"):
        name = f"o-{logical.lower()}"
        s3.create_bucket(Bucket=name)
        world.refs[logical] = name
        world.attributes[(logical, "Arn")] = f"arn:aws:s3:::{name}"
    sqs = boto3.client("sqs", region_name=REGION)
    # a dead-letter queue before the queue whose redrive policy names it
    queues = sorted(resources(template, "AWS::SQS::Queue").items(), key=lambda q: "RedrivePolicy" in q[1]["Properties"])
    for logical, resource in queues:
        props = resource["Properties"]
        attributes = {"VisibilityTimeout": str(props.get("VisibilityTimeout", 30))}
        if "RedrivePolicy" in props:
            attributes["RedrivePolicy"] = json.dumps(resolve(props["RedrivePolicy"], world))
        url = sqs.create_queue(QueueName=logical, Attributes=attributes)["QueueUrl"]
        world.refs[logical] = url
        world.attributes[(logical, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{logical}"
        world.attributes[(logical, "QueueName")] = logical
        world.attributes[(logical, "QueueUrl")] = url
    host = str(psycopg.conninfo.conninfo_to_dict(pg_url).get("host"))
    for logical in resources(template, "AWS::RDS::DBCluster"):
        world.attributes[(logical, "Endpoint.Address")] = host
    for logical in resources(template, "AWS::RDS::DBProxy"):
        # the functions reach Postgres through the proxy; here the test's own server
        world.attributes[(logical, "Endpoint")] = host
        world.attributes[(logical, "DBProxyArn")] = f"arn:aws:rds:{REGION}:{ACCOUNT}:db-proxy:{PROXY_RESOURCE_ID}"
    for logical in resources(template, "AWS::RDS::DBInstance"):
        # the migrations reach the instance itself, as its owner
        world.attributes[(logical, "Endpoint.Address")] = host
        world.attributes[(logical, "DbiResourceId")] = "db-INSTANCE0RESOURCE0ID"
    return world


@pytest.fixture
def deployment(template: dict[str, Any], pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    aws_credentials(monkeypatch, REGION)
    recorder = Recorder(ACCOUNT)
    lambdas = LambdaService().install(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        world = _build_world(template, pg_url)
        functions = {role: function_of(template, handler) for role, handler in HANDLERS.items()}
        recorder.install(monkeypatch)
        # the functions' tokens are signed for the proxy (or cluster) endpoint, here a socket directory: the
        # code signs those for localhost (o/aws/database.py), which is this deployment's proxy (or cluster)
        clustered = bool(resources(template, "AWS::RDS::DBCluster"))
        recorder.db_resources["localhost"] = CLUSTER_RESOURCE_ID if clustered else PROXY_RESOURCE_ID
        database = str(psycopg.conninfo.conninfo_to_dict(pg_url).get("dbname", "postgres"))
        deployed = Deployment(template, world, functions, recorder, lambdas, database)
        _run_migrations(deployed, monkeypatch)
        _create_live_aliases(deployed, monkeypatch)
        yield deployed


def _run_migrations(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CloudFormation does before any serving function exists: the migrations custom resource, as the
    owner; it makes the app role (o_app) the other functions connect as."""
    role = deployment.functions["migrate"]
    ((logical, resource),) = resources(deployment.template, "Custom::OSchemaMigrations").items()
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "migrate", env) as migrate, \
            response_sink() as sink:  # fmt: skip
        properties = resolve(resource["Properties"], deployment.world)
        event = request_event("Create", sink, resource_type="Custom::OSchemaMigrations", logical_id=logical,
                              properties=properties)  # fmt: skip
        migrate.handler(event, Context(role, remaining_ms=120_000))
        assert sink.last["Status"] == "SUCCESS", sink.last


def _create_live_aliases(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """What CloudFormation does first: the agent step's ``live`` alias through its custom resource."""
    role = deployment.functions["alias"]
    found = resources(deployment.template, "Custom::OLiveAlias")
    assert found, "the agent step's live alias is a custom resource"
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "alias", env) as owner, \
            response_sink() as sink:  # fmt: skip
        for logical, resource in found.items():
            properties = resolve(resource["Properties"], deployment.world)
            event = request_event("Create", sink, resource_type="Custom::OLiveAlias", logical_id=logical,
                                  properties=properties)  # fmt: skip
            owner.handler(event, Context(role))
            assert sink.last["Status"] == "SUCCESS", sink.last


@pytest.fixture
def scripted() -> Scripted:
    return Scripted()


@pytest.fixture
def model(scripted: Scripted) -> Iterator[OpenAIServer]:
    with OpenAIServer(Script(default=scripted)) as server:
        yield server


def _cold_start(deployment: Deployment, role: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Import ``role``'s handler with the environment the stack gives it, as a new execution environment
    does; the database is reached through the RDS secret (as deployed) with the test's server behind it, and
    the operator lets calls reach the test's servers on 127.0.0.1."""
    env = {**deployment.environment(role), **LOOPBACK_OPERATOR}
    # moto answers the services' IPv4 names only; which names the economy functions' dual-stack setting
    # gives is pinned in tests/infra/test_database_access.py, and IAM does not depend on the name called
    env.pop(DUALSTACK_ENV, None)
    if "O_DB_NAME" in env:  # the test server's database instead of the deployed one's name
        env["O_DB_NAME"] = deployment.database
    if "O_EMBEDDING_MODEL_PATH" in env:  # the layer's copy of the model files is this package's
        model, tokenizer = local_model_files()
        env.update(O_EMBEDDING_MODEL_PATH=str(model), O_EMBEDDING_TOKENIZER_PATH=str(tokenizer))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return fresh_handler(HANDLERS[role].rsplit(".", 1)[0])


def test_every_call_each_function_makes_is_allowed_by_its_role(
    deployment: Deployment,
    pg_url: str,
    db: Database,
    model: OpenAIServer,
    scripted: Scripted,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    f = deployment.functions
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"iam-{uuid.uuid4()}")
        _, key = orgs.create_api_key(conn, org["id"])
    org_id, agent_id = task.make_agent(db, model)
    # two agents whose memory edits wait for a human: one conversation has one run at a time
    with db.transaction() as conn:
        careful, prompt = (lifecycle.create(conn, org_id, lifecycle.AgentSpec(
            name=name, llm_config=model.llm_config().model_dump(),
            memory_blocks=[{"label": "human", "value": "?", "limit": 200}],
            tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}],
        )).agent["id"] for name in ("careful", "prompt"))  # fmt: skip

    with acting_as(f["tool_sandbox"]), _cold_start(deployment, "tool_sandbox", monkeypatch) as sandbox:
        deployment.lambdas.serve(f["tool_sandbox"], sandbox.handler, Context(f["tool_sandbox"]))
        waiting = _run_agent_step(deployment, monkeypatch, db, org_id, agent_id, (prompt, careful), model)
        keeper = _run_api(deployment, monkeypatch, key, org_id, careful, waiting, model)
        _run_tool_with_a_secret(deployment, monkeypatch, db, org["id"], keeper, model)
        _run_evolution(deployment, monkeypatch, db, org_id, agent_id, scripted)
        _run_sleeptime_and_migrate(deployment, monkeypatch, org_id, agent_id)
        _run_files(deployment, monkeypatch, key)

    calls = [c for c in deployment.recorder.calls if c.function is not None]
    by_function = {deployment.role_name(c) for c in calls}
    # the canary ran: the evolution worker published a version, routed the alias and read its metrics
    evolution_actions = {iam_request(c).action for c in calls if deployment.role_name(c) == "evolution"}
    assert {"lambda:PublishVersion", "lambda:UpdateAlias", "cloudwatch:GetMetricData"} <= evolution_actions
    assert {"api", "agent_step", "evolution", "sleeptime", "migrate", "alias", "ingest"} <= by_function, by_function
    # the transfers ran: the API signed the upload and download URLs, the ingest function wrote the export
    presigned = {(deployment.role_name(c), iam_request(c).action) for c in calls if c.service == "s3"}
    assert {("api", "s3:PutObject"), ("api", "s3:GetObject"), ("ingest", "s3:PutObject")} <= presigned
    # and the ingest function handed a bundle import on to its next invocation
    assert ("ingest", "sqs:SendMessage") in {(deployment.role_name(c), iam_request(c).action) for c in calls}
    denied = deployment.denied()
    print(f"\n{len(calls)} calls by {len(by_function)} functions, {len(denied)} denied")
    for line in sorted(
        {f"{deployment.role_name(c)}: {iam_request(c).action} {iam_request(c).resource}" for c in calls}
    ):
        print("  ", line)
    assert not denied, "calls the deployed roles would refuse:\n" + "\n".join(denied)


def _api_event(method: str, path: str, key: str, body: Any = None) -> dict[str, Any]:
    headers = {"content-type": "application/json", "host": "api.example.com", "authorization": f"Bearer {key}"}
    return {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
            "multiValueQueryStringParameters": None, "pathParameters": {"proxy": path.lstrip("/")},
            "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": "/live" + path,
                               "stage": "live", "identity": {"sourceIp": "127.0.0.1"}},
            "body": None if body is None else json.dumps(body), "isBase64Encoded": False}  # fmt: skip


def _run_api(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, key: str, org: str, careful: str, waiting: str,
    model: OpenAIServer,
) -> str:  # fmt: skip
    """The API's calls; the id of an agent it made with a tool secret (sealed with a KMS data key)."""
    role = deployment.functions["api"]
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "api", env) as api:
        context = Context(role, alias="live")

        def request(method: str, path: str, body: Any = None) -> dict[str, Any]:
            response = api.handler(_api_event(method, path, key, body), context)
            assert response["statusCode"] < 500, response
            return json.loads(response["body"]) if response.get("body") else {}

        agent = request("POST", "/v1/agents/", {"name": "iam", "llm_config": model.llm_config().model_dump()})
        started = request("POST", f"/v1/agents/{agent['id']}/messages/async",
                          {"messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
        request("POST", f"/v1/runs/{started['id']}/cancel")
        request("POST", "/v1/tools/run", {"source_code": "def t():\n    return 'ok'\n", "args": {}})
        evolution = request("POST", f"/v1/agents/{agent['id']}/evolutions", {})
        # stopping an evolution whose canary the agent step's alias routes withdraws that canary from the API
        _route_a_canary(deployment.functions["agent_step"], evolution["id"])
        request("POST", f"/v1/agents/{agent['id']}/evolutions/{evolution['id']}/stop")
        alias = boto3.client("lambda", region_name=REGION).get_alias(FunctionName=deployment.functions["agent_step"],
                                                                     Name="live")  # fmt: skip
        assert not (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights"), "the canary was withdrawn"
        tool = request("POST", "/v1/tools/", {"source_code": READ_SECRET})
        keeper = request("POST", "/v1/agents/", {"name": "keeper", "llm_config": model.llm_config().model_dump(),
                                                 "tool_ids": [tool["id"]], "secrets": {"TOKEN": "t-1"}})  # fmt: skip
    # the approval a human gives over the API releases the execution waiting on it (another organization's
    # key cannot: the paused run is in ``org``)
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "api", env) as api:
        with api._runtime.db.transaction() as conn:
            owner_key = orgs.create_api_key(conn, org)[1]
        decision = {"messages": [{"type": "approval", "approve": True}]}
        response = api.handler(_api_event("POST", f"/v1/agents/{careful}/messages/async", owner_key, decision),
                               Context(role, alias="live"))  # fmt: skip
        assert response["statusCode"] == 200, response
        assert waiting
    return str(keeper["id"])


def _multipart_event(path: str, key: str, file_name: str, data: bytes) -> dict[str, Any]:
    boundary = "o-iam-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    event = _api_event("POST", path, key)
    event["headers"]["content-type"] = f"multipart/form-data; boundary={boundary}"
    event["multiValueHeaders"]["content-type"] = [event["headers"]["content-type"]]
    event.update(body=base64.b64encode(body).decode(), isBase64Encoded=True)
    return event  # fmt: skip


def _run_files(deployment: Deployment, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """An upload through the API (bytes to S3, announced on the ingest queue), then the ingest function
    on the queue's message (reads the bytes back), then the folder deleted (its bytes with it)."""
    api_role, ingest_role = deployment.functions["api"], deployment.functions["ingest"]
    with monkeypatch.context() as env, acting_as(api_role), _cold_start(deployment, "api", env) as api:
        context = Context(api_role, alias="live")
        folder = json.loads(api.handler(_api_event("POST", "/v1/folders/", key, {"name": "iam"}), context)["body"])
        event = _multipart_event(f"/v1/folders/{folder['id']}/upload", key, "notes.md", b"# Notes\nAda likes tea.")
        uploaded = api.handler(event, context)
        assert uploaded["statusCode"] == 200, uploaded
        queue_url = api._runtime.settings.files.ingest_queue_url
    # Lambda's event source mapping receives the message (the service, not the function's code)
    outside = running_as.set(None)
    try:
        got = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    finally:
        running_as.reset(outside)
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in got["Messages"]]
    with monkeypatch.context() as env, acting_as(ingest_role), _cold_start(deployment, "ingest", env) as ingest:
        assert ingest.handler({"Records": records}, Context(ingest_role)) == {"batchItemFailures": []}
    with monkeypatch.context() as env, acting_as(api_role), _cold_start(deployment, "api", env) as api:
        context = Context(api_role, alias="live")
        file_id = json.loads(uploaded["body"])["id"]
        got_file = api.handler(_api_event("GET", f"/v1/folders/{folder['id']}/files/{file_id}", key), context)
        assert json.loads(got_file["body"])["processing_status"] == "completed", got_file
        assert api.handler(_api_event("DELETE", f"/v1/folders/{folder['id']}", key), context)["statusCode"] == 200
    _run_transfers(deployment, monkeypatch, key)


def _deliver(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, queue_url: str, remaining_ms: int = 900_000
) -> None:
    """The ingest function on every message the queue holds (received by Lambda's event source mapping),
    in an invocation with ``remaining_ms`` left."""
    ingest_role = deployment.functions["ingest"]
    outside = running_as.set(None)
    try:
        got = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    finally:
        running_as.reset(outside)
    records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in got["Messages"]]
    with monkeypatch.context() as env, acting_as(ingest_role), _cold_start(deployment, "ingest", env) as ingest:
        context = Context(ingest_role, remaining_ms=remaining_ms)
        assert ingest.handler({"Records": records}, context) == {"batchItemFailures": []}


def _run_transfers(deployment: Deployment, monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    """An export job (written to S3 by the ingest function, fetched by a presigned GET the API signs), and
    its bytes back through an upload session (a presigned PUT the API signs, checked when completed, then
    imported by the ingest function from S3)."""
    api_role = deployment.functions["api"]

    def call(method: str, path: str, body: Any = None) -> dict[str, Any]:
        with monkeypatch.context() as env, acting_as(api_role), _cold_start(deployment, "api", env) as api:
            response = api.handler(_api_event(method, path, key, body), Context(api_role, alias="live"))
            assert response["statusCode"] < 300, response
            queue.append(api._runtime.settings.files.ingest_queue_url)
            return dict(json.loads(response["body"]))

    queue: list[str] = []
    agent = call("POST", "/v1/agents/", {"name": "moved"})["id"]
    export = call("POST", f"/v1/agents/{agent}/exports")
    _deliver(deployment, monkeypatch, queue[-1])
    done = call("GET", f"/v1/exports/{export['id']}")
    assert done["status"] == "completed" and done["download_url"].startswith("https://"), done
    outside = running_as.set(None)  # the client's own requests, with the URLs' signatures
    try:
        data = requests.get(done["download_url"], timeout=30).content
        assert len(data) == done["size"]
        session = call("POST", "/v1/uploads/", {"kind": "bundle", "size": len(data), "name": "arrived"})
        put = requests.put(session["upload_url"], data=data, headers=session["upload_headers"], timeout=30)
        assert put.status_code == 200, put.text
    finally:
        running_as.reset(outside)
    assert call("POST", f"/v1/uploads/{session['id']}/complete")["status"] == "queued"
    # an invocation with no time left past one chunk: the import hands itself on with a new message,
    # which the next invocation takes to the end
    _deliver(deployment, monkeypatch, queue[-1], remaining_ms=0)
    handed_on = call("GET", f"/v1/uploads/{session['id']}")
    assert handed_on["status"] == "queued", handed_on
    _deliver(deployment, monkeypatch, queue[-1])
    imported = call("GET", f"/v1/uploads/{session['id']}")
    assert imported["status"] == "completed", imported
    assert call("GET", f"/v1/agents/{imported['result']['agent_id']}")["name"] == "arrived"


READ_SECRET = '''
import os
def read_secret(variable: str) -> str:
    """Return a variable of the tool's environment.

    Args:
        variable: its name
    """
    return os.environ.get(variable, "<unset>")
'''


def _run_tool_with_a_secret(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, db: Database, org: str, agent: str, model: OpenAIServer
) -> None:
    """The agent step opens the agent's tool secret (KMS Decrypt) for the sandbox that runs its tool."""
    role = deployment.functions["agent_step"]
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "agent_step", env) as step:
        with db.transaction() as conn:
            run_id = runs.start(conn, org, agent, [runs.InputMessage("user", "token?")], {}).run.id
        model.push(call("read_secret", variable="TOKEN", request_heartbeat=True), call("send_message", message="ok"))
        event: dict[str, Any] = {"action": "step", "run_id": run_id, "iteration": 0}
        for _ in range(10):
            result: dict[str, Any] = step.handler(event, Context(role, function_version="1", alias="live"))
            if result["next"] in ("done", "failed"):
                break
            event = {"action": result["next"], "run_id": run_id, "iteration": result["iteration"]}
        assert result["next"] == "done", result
        with db.transaction() as conn:
            returned = messages.tool_results(conn, run_id)
        assert "t-1" in json.dumps([r["tool_returns"] or r["content"] for r in returned], default=str)


def _route_a_canary(function: str, evolution_id: str) -> None:
    """What the evolution worker's canary leaves on the alias (a published version marked with the evolution,
    a weight of ``live`` on it), made here by the test itself, as nobody's call."""
    token = running_as.set(None)
    try:
        lam = boto3.client("lambda", region_name=REGION)
        before = lam.get_function_configuration(FunctionName=function).get("Environment") or {"Variables": {}}
        lam.update_function_configuration(FunctionName=function, Environment={"Variables": {CANARY_ENV: evolution_id}})
        version = lam.publish_version(FunctionName=function)["Version"]
        lam.update_function_configuration(FunctionName=function, Environment=before)
        stable = lam.get_alias(FunctionName=function, Name="live")["FunctionVersion"]
        lam.update_alias(FunctionName=function, Name="live", FunctionVersion=stable,
                         RoutingConfig={"AdditionalVersionWeights": {version: 0.1}})  # fmt: skip
    finally:
        running_as.reset(token)


def _run_agent_step(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, db: Database, org: str, agent: str,
    careful: tuple[str, str], model: OpenAIServer,
) -> str:  # fmt: skip
    """Runs on the agent step as the state machine drives it; the id of a run (of ``careful[1]``) left
    waiting on an approval."""
    decides_first, waits = careful
    role = deployment.functions["agent_step"]
    with monkeypatch.context() as env, acting_as(role), _cold_start(deployment, "agent_step", env) as step:
        context = Context(role, function_version="1", alias="live")

        def start(agent_id: str, text: str) -> str:
            with db.transaction() as conn:
                return runs.start(conn, org, agent_id, [runs.InputMessage("user", text)], {}).run.id

        def drive(run_id: str) -> dict[str, Any]:
            event: dict[str, Any] = {"action": "step", "run_id": run_id, "iteration": 0}
            for _ in range(10):
                result: dict[str, Any] = step.handler(event, context)
                if result["next"] in ("done", "failed", "approval"):
                    return result
                event = {"action": result["next"], "run_id": run_id, "iteration": result["iteration"]}
            raise AssertionError("the run did not settle")

        assert drive(start(agent, "What is the capital of France?"))["next"] == "done"
        # a decision that came before the execution reached its wait: the step releases the wait itself
        model.push(call("core_memory_append", _id="call_a", label="human", content="a"))
        decided = start(decides_first, "remember a")
        assert drive(decided)["next"] == "approval"
        with db.transaction() as conn:
            runs.approve(conn, org, decides_first, [runs.Decision(True)])
        step.handler({"action": "await_approval", "run_id": decided, "iteration": 1, "task_token": "t1"}, context)
        # a run whose execution waits for a human: the API's approval releases it
        model.push(call("core_memory_append", _id="call_b", label="human", content="b"))
        waiting = start(waits, "remember b")
        assert drive(waiting)["next"] == "approval"
        step.handler({"action": "await_approval", "run_id": waiting, "iteration": 1, "task_token": "t2"}, context)
        return waiting


def _run_evolution(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, db: Database, org: str, agent: str, scripted: Scripted,
) -> None:  # fmt: skip
    role = deployment.functions["evolution"]
    with monkeypatch.context() as env, acting_as(role):
        env.setenv("O_EVOLUTION_BAKE_SECONDS", "0")
        env.setenv("O_EVOLUTION_CANARY_WEIGHT", "0.2")
        with _cold_start(deployment, "evolution", env) as worker:
            with db.transaction() as conn:
                evaluator.save_suite(conn, org, agent, task.suite())
            scripted.propose(task.BETTER)
            evo = loop.start(worker._deps, org, agent, trigger="test")
            context = Context(role)
            for action in ("reflect", "propose", "shadow", "gate", "canary", "evaluate"):
                result = worker.handler({"action": action, "evolution_id": evo.id}, context)
                if result["next"] == "done":
                    break
            # whatever the decision, the canary's alias calls and its metrics query were made
            assert result["status"] in ("promoted", "rolled_back", "canary"), result
            # a canary still routing holds the agent step's one canary slot (in the database this module's
            # runs share): the next profile's evolution would be rolled back before its alias calls
            loop.stop(worker._deps, org, evo.id, reason="the IAM test is done with it")


def _run_sleeptime_and_migrate(deployment: Deployment, monkeypatch: pytest.MonkeyPatch, org: str, agent: str) -> None:
    # one agent's pass (a sweep would also visit every other test's agents in the shared database)
    for role, event in (
        ("sleeptime", {"kind": "sleeptime", "agent_id": agent, "organization_id": org}),
        ("migrate", {"action": "migrate"}),
    ):
        name = deployment.functions[role]
        with monkeypatch.context() as env, acting_as(name), _cold_start(deployment, role, env) as module:
            out = module.handler(event, Context(name))
            assert "error" not in (out or {}), out
