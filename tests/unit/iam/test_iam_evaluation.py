"""The test-side IAM evaluator: policy matching, intrinsic resolution, and the resource a call names."""

from __future__ import annotations

import pytest

from tests.iam.policy import Request, allows
from tests.iam.recorder import Call, iam_request
from tests.iam.template import Unresolved, World, resolve

FN = "arn:aws:lambda:us-east-1:123456789012:function:step"


def test_allow_needs_matching_action_and_resource() -> None:
    statements = [{"Effect": "Allow", "Action": ["lambda:GetAlias"], "Resource": [FN, f"{FN}:live"]}]
    assert allows(statements, Request("lambda:GetAlias", FN))
    assert allows(statements, Request("LAMBDA:getalias", FN))  # actions ignore case
    assert not allows(statements, Request("lambda:GetAlias", f"{FN}:7"))  # a version is another resource
    assert not allows(statements, Request("lambda:UpdateAlias", FN))


def test_wildcards_deny_and_not_elements() -> None:
    statements = [
        {"Effect": "Allow", "Action": "lambda:Get*", "Resource": f"{FN}:*"},
        {"Effect": "Deny", "Action": "lambda:GetPolicy", "Resource": "*"},
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:states:*:*:stateMachine:O-?oop"},
    ]
    assert allows(statements, Request("lambda:GetFunctionConfiguration", f"{FN}:12"))
    assert not allows(statements, Request("lambda:GetFunctionConfiguration", FN))  # ":*" needs a qualifier
    assert not allows(statements, Request("lambda:GetPolicy", f"{FN}:1"))  # explicit deny wins
    assert allows(statements, Request("states:StartExecution", "arn:aws:states:us-east-1:1:stateMachine:O-loop"))
    assert not allows(statements, Request("iam:PassRole", "arn:aws:states:us-east-1:1:stateMachine:O-loop"))


def test_conditions_grant_only_what_the_request_carries() -> None:
    statements = [{"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*",
                   "Condition": {"StringEquals": {"cloudwatch:namespace": "O/Agents"}}}]  # fmt: skip
    assert allows(statements, Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "O/Agents"}))
    assert not allows(statements, Request("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": "Other"}))
    unknown = [{**statements[0], "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]
    assert not allows(unknown, Request("cloudwatch:PutMetricData", "*"))
    key = "arn:aws:kms:us-east-1:1:key/k"
    sealing = [{"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key,
                "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "o-tool-secrets"}}}]  # fmt: skip
    assert allows(sealing, Request("kms:GenerateDataKey", key, {"kms:EncryptionContext:purpose": "o-tool-secrets"}))
    assert not allows(sealing, Request("kms:GenerateDataKey", key, {"kms:EncryptionContext:purpose": "other"}))
    assert not allows(sealing, Request("kms:GenerateDataKey", key))


def test_intrinsics_resolve_against_the_world() -> None:
    world = World("123456789012", "us-east-1", refs={"Fn": "step"}, attributes={("Fn", "Arn"): FN})
    joined = {"Fn::Join": ["", [{"Fn::GetAtt": ["Fn", "Arn"]}, ":live"]]}
    assert resolve(joined, world) == f"{FN}:live"
    assert resolve({"Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:x:${Fn}"}, world) == (
        "arn:aws:states:us-east-1:x:step"
    )
    assert resolve({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}, world) == "b"
    with pytest.raises(Unresolved):
        resolve({"Ref": "Missing"}, world)


def _call(service: str, operation: str, **params: object) -> Call:
    return Call("fn", service, operation, dict(params), "us-east-1", "123456789012")


def test_lambda_calls_name_the_qualified_resource_when_they_act_on_a_version() -> None:
    assert iam_request(_call("lambda", "GetFunctionConfiguration", FunctionName="step", Qualifier="7")).resource == (
        f"{FN}:7"
    )
    assert iam_request(_call("lambda", "GetFunctionConfiguration", FunctionName="step")).resource == FN
    assert iam_request(_call("lambda", "Invoke", FunctionName=f"{FN}:live")) == Request(
        "lambda:InvokeFunction", f"{FN}:live"
    )
    # alias and version management act on the function itself
    assert iam_request(_call("lambda", "UpdateAlias", FunctionName="step", Name="live")).resource == FN
    assert iam_request(_call("lambda", "PublishVersion", FunctionName=FN)).resource == FN


def test_other_services() -> None:
    machine = "arn:aws:states:us-east-1:123456789012:stateMachine:O-agent-loop"
    assert iam_request(_call("states", "StartExecution", stateMachineArn=machine)).resource == machine
    assert iam_request(_call("states", "SendTaskSuccess", taskToken="t", output="{}")).resource == "*"
    assert iam_request(_call("secretsmanager", "GetSecretValue", SecretId="o/keys")).resource == (
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:o/keys"
    )
    metrics = iam_request(_call("cloudwatch", "GetMetricData", MetricDataQueries=[]))
    assert metrics.resource == "*"
    assert iam_request(_call("s3", "GetObject", Bucket="b", Key="org/f/k")).resource == "arn:aws:s3:::b/org/f/k"
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/FilesQueue"
    assert iam_request(_call("sqs", "SendMessage", QueueUrl=queue, MessageBody="{}")).resource == (
        "arn:aws:sqs:us-east-1:123456789012:FilesQueue"
    )
    with pytest.raises(ValueError, match="teach"):
        iam_request(_call("dynamodb", "GetItem", TableName="t", Key={}))
