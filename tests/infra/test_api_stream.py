"""The streaming API in the synthesized template: API Gateway's response streaming in front of a function
that runs the app under the Lambda Web Adapter (infra/api.py). What only AWS can show is in infra/README.md."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infra import api, build
from tests.infra.conftest import Synthesized

STREAM_RESOURCE = "/stream"


def _resources_by_path(synthesized: Synthesized) -> dict[str, str]:
    """Logical id → path of every API Gateway resource (the root is "/")."""
    resources = synthesized.resources("AWS::ApiGateway::Resource")
    (api_id,) = synthesized.resources("AWS::ApiGateway::RestApi")

    def path(logical: str) -> str:
        props = resources[logical]["Properties"]
        parent = props["ParentId"]
        prefix = "" if parent == {"Fn::GetAtt": [api_id, "RootResourceId"]} else path(parent["Ref"])
        return f"{prefix}/{props['PathPart']}"

    return {logical: path(logical) for logical in resources}


def _methods(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """(path, method properties) of every method."""
    paths = _resources_by_path(synthesized)
    (api_id,) = synthesized.resources("AWS::ApiGateway::RestApi")
    out = []
    for method in synthesized.resources("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        resource = props["ResourceId"]
        at = "/" if resource == {"Fn::GetAtt": [api_id, "RootResourceId"]} else paths[resource["Ref"]]
        out.append((at, props))
    return out


def _stream_function(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    return synthesized.one("AWS::Lambda::Function", "ApiStreamFunction")


def test_stream_paths_use_api_gateway_response_streaming_into_the_streaming_function(
    synthesized: Synthesized,
) -> None:
    function, _ = _stream_function(synthesized)
    methods = _methods(synthesized)
    streamed = [(at, props) for at, props in methods if at == STREAM_RESOURCE or at.startswith(STREAM_RESOURCE + "/")]
    assert sorted(at for at, _ in streamed) == ["/stream", "/stream/{proxy+}"]
    for _, props in streamed:
        integration = props["Integration"]
        assert props["HttpMethod"] == "ANY" and integration["Type"] == "AWS_PROXY"
        assert integration["ResponseTransferMode"] == "STREAM"
        # a stream may last what Lambda and API Gateway allow it: 15 minutes, not 29 seconds
        assert integration["TimeoutInMillis"] == 15 * 60 * 1000
        parts = integration["Uri"]["Fn::Join"][1]
        # InvokeWithResponseStream, not Invoke
        assert any(isinstance(p, str) and p.endswith(":lambda:path/2021-11-15/functions/") for p in parts)
        assert parts[-1] == "/response-streaming-invocations"
        assert {"Fn::GetAtt": [function, "Arn"]} in parts
    # every other route stays on the buffered API function (Mangum)
    for at, props in methods:
        if (at, props) not in streamed:
            assert props["Integration"].get("ResponseTransferMode", "BUFFERED") == "BUFFERED", at
    # API Gateway may invoke it (InvokeWithResponseStream is authorized as lambda:InvokeFunction) on those paths
    permissions = [
        p["Properties"] for p in synthesized.resources("AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function, "Arn"]}
    ]  # fmt: skip
    assert permissions
    for permission in permissions:
        assert permission["Action"] == "lambda:InvokeFunction"
        assert permission["Principal"] == "apigateway.amazonaws.com"
        source = permission["SourceArn"]["Fn::Join"][1][-1]
        assert source.endswith(("/*/stream", "/*/stream/*")), source


def test_the_streaming_function_runs_the_app_under_the_web_adapter(synthesized: Synthesized) -> None:
    _, function = _stream_function(synthesized)
    props = function["Properties"]
    assert props["Handler"] == "functions/api/run.sh"
    assert props["Runtime"] == "python3.12" and props["Architectures"] == ["arm64"]
    assert props["Timeout"] == 15 * 60
    adapter, dependencies = props["Layers"]
    arn = "".join(p if isinstance(p, str) else "{" + json.dumps(p) + "}" for p in adapter["Fn::Join"][1])
    assert arn.endswith(":753240598075:layer:LambdaAdapterLayerArm64:30"), arn
    assert "Ref" in dependencies  # the stack's own dependency layer
    env = props["Environment"]["Variables"]
    assert env["AWS_LAMBDA_EXEC_WRAPPER"] == "/opt/bootstrap"
    assert env["AWS_LWA_INVOKE_MODE"] == "response_stream"
    assert env["AWS_LWA_PORT"] == "8080"
    assert env["AWS_LWA_REMOVE_BASE_PATH"] == "/stream"
    assert env["AWS_LWA_READINESS_CHECK_PATH"] == "/v1/health/"
    # it drives streamed runs itself, and hands them to the state machine well before its own timeout
    assert 0 < float(env["O_AGENT_STREAM_INLINE_S"]) <= props["Timeout"] - 180
    # the same app and settings as the API function
    _, buffered = synthesized.one("AWS::Lambda::Function", "ApiFunction")
    api_env = buffered["Properties"]["Environment"]["Variables"]
    shared = {k: v for k, v in api_env.items() if not k.startswith("POWERTOOLS_SERVICE")}
    assert shared.items() <= env.items()
    assert "O_AGENT_STATE_MACHINE_ARN" in env and "O_DB_HOST" in env
    assert props["VpcConfig"] == buffered["Properties"]["VpcConfig"]


def _role_actions(synthesized: Synthesized, function: dict[str, Any]) -> set[str]:
    role = function["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                found = statement["Action"]
                actions |= {found} if isinstance(found, str) else set(found)
    return actions


def test_the_streaming_function_may_do_what_the_api_does_and_run_steps(synthesized: Synthesized) -> None:
    _, stream = _stream_function(synthesized)
    _, buffered = synthesized.one("AWS::Lambda::Function", "ApiFunction")
    stream_actions = _role_actions(synthesized, stream)
    assert _role_actions(synthesized, buffered) <= stream_actions
    # it runs streamed runs' tools, so it opens tool secrets as the agent step does
    assert {"kms:Decrypt", "lambda:InvokeFunction", "states:StartExecution"} <= stream_actions


def test_the_outputs_name_the_streaming_base_url(synthesized: Synthesized) -> None:
    url = synthesized.template["Outputs"]["StreamUrl"]["Value"]["Fn::Join"][1]
    assert url[-1].endswith("/stream/")


def test_the_handler_script_is_executable_in_the_code_asset(tmp_path: Path) -> None:
    code = build.build_code(tmp_path / "code")
    script = code / api.STREAM_HANDLER
    assert os.access(script, os.X_OK)
    text = script.read_text()
    assert text.startswith("#!/bin/sh\n") and "-m functions.api.stream" in text
    # the layer carries the server it starts
    assert "uvicorn" in (build.LAYERS / "requirements.txt").read_text()
