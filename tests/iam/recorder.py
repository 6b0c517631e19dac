"""Every AWS call O's code makes during a test, with the function it ran as and the IAM request it is.

Each botocore API call goes through :meth:`botocore.client.BaseClient._make_api_call`; the recorder
wraps it (the real call still happens, against moto), notes the operation and its parameters, and
the function it is attributed to: :data:`tests.lambdas.running_as`, which the Lambda stand-in sets
around each invocation (and a test around a handler it calls itself). FastAPI hands sync endpoints
to worker threads with a copy of the caller's context, so the attribution follows the work.

:func:`iam_request` turns a call into what IAM authorizes: the action, and the resource ARN the way
the service names it (a qualified Lambda ARN when the call names a version or alias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import botocore.signers
import pytest
from botocore.client import BaseClient

from tests.iam.policy import Request
from tests.lambdas import running_as


@dataclass(frozen=True)
class Call:
    function: str | None
    service: str  # the IAM service prefix: lambda, states, secretsmanager, cloudwatch, kms, rds-db, ...
    operation: str
    params: dict[str, Any]
    region: str
    account: str

    @property
    def action(self) -> str:
        return f"{self.service}:{self.operation}"


# botocore service names whose IAM prefix differs
_PREFIX = {"stepfunctions": "states", "monitoring": "cloudwatch", "bedrock-runtime": "bedrock"}


class Recorder:
    def __init__(self, account: str) -> None:
        self.account = account
        self.calls: list[Call] = []
        # the host an IAM auth token is signed for -> the resource id of its rds-db ARN (a proxy's prx-…)
        self.db_resources: dict[str, str] = {}

    def install(self, monkeypatch: pytest.MonkeyPatch) -> Recorder:
        real = BaseClient._make_api_call
        recorder = self
        real_token = botocore.signers.generate_db_auth_token

        def token(client: Any, DBHostname: str, Port: int, DBUsername: str, Region: str | None = None) -> str:
            # signed locally, not an API call; on AWS it is authorized as rds-db:connect when used
            recorder.calls.append(
                Call(running_as.get(), "rds-db", "connect",
                     {"DBHostname": DBHostname, "DBUsername": DBUsername,
                      "ResourceId": recorder.db_resources.get(DBHostname, f"<unknown host {DBHostname}>")},
                     Region or client.meta.region_name, recorder.account)
            )  # fmt: skip
            return str(real_token(client, DBHostname, Port, DBUsername, Region))

        # boto3 copies this function onto each rds client class it creates from now on
        monkeypatch.setattr(botocore.signers, "generate_db_auth_token", token)
        real_presign = botocore.signers.generate_presigned_url

        def presign(client: Any, ClientMethod: str, Params: Any = None, ExpiresIn: int = 3600,
                    HttpMethod: Any = None) -> str:  # fmt: skip
            # signed locally, not an API call; S3 authorizes the signer's action when the URL is used
            operation = client.meta.method_to_api_mapping.get(ClientMethod, ClientMethod)
            recorder.calls.append(
                Call(running_as.get(), "s3", operation, dict(Params or {}), client.meta.region_name, recorder.account)
            )
            return str(real_presign(client, ClientMethod, Params, ExpiresIn, HttpMethod))

        # and this one onto each s3 client class
        monkeypatch.setattr(botocore.signers, "generate_presigned_url", presign)

        def recorded(client: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
            service = client.meta.service_model.service_name
            recorder.calls.append(
                Call(running_as.get(), _PREFIX.get(service, service), operation_name, dict(api_params),
                     client.meta.region_name, recorder.account)
            )  # fmt: skip
            return real(client, operation_name, api_params)

        monkeypatch.setattr(BaseClient, "_make_api_call", recorded)
        return self

    def of(self, function: str) -> list[Call]:
        return [c for c in self.calls if c.function == function]


# -- what IAM authorizes ------------------------------------------------------------------------------

# Lambda actions that act on the qualified resource the call names (a version or alias ARN)
_QUALIFIED = {"Invoke", "InvokeFunction", "GetFunction", "GetFunctionConfiguration", "GetPolicy"}
# Lambda operations whose IAM action has another name
_LAMBDA_ACTION = {"Invoke": "InvokeFunction", "ListVersionsByFunction": "ListVersionsByFunction"}
_FUNCTION = re.compile(
    r"^(?:arn:[^:]+:lambda:(?P<region>[^:]+):(?P<account>\d{12}):function:|(?P<acct2>\d{12}):function:)?"
    r"(?P<name>[A-Za-z0-9_.-]+)(?::(?P<qualifier>[$A-Za-z0-9_-]+))?$"
)


def _lambda(call: Call) -> Request:
    action = f"lambda:{_LAMBDA_ACTION.get(call.operation, call.operation)}"
    match = _FUNCTION.match(str(call.params["FunctionName"]))
    if match is None:
        raise ValueError(f"unreadable FunctionName {call.params['FunctionName']!r}")
    region = match.group("region") or call.region
    account = match.group("account") or match.group("acct2") or call.account
    arn = f"arn:aws:lambda:{region}:{account}:function:{match.group('name')}"
    qualifier = call.params.get("Qualifier") or match.group("qualifier")
    if qualifier and call.operation in _QUALIFIED:
        arn += f":{qualifier}"
    return Request(action, arn)


def _states(call: Call) -> Request:
    action = f"states:{call.operation}"
    for key in ("stateMachineArn", "executionArn"):
        if key in call.params:
            return Request(action, str(call.params[key]))
    # SendTaskSuccess/Failure/Heartbeat name no resource (the task token stands for the execution)
    return Request(action, "*")


def _secretsmanager(call: Call) -> Request:
    secret = str(call.params["SecretId"])
    if not secret.startswith("arn:"):
        secret = f"arn:aws:secretsmanager:{call.region}:{call.account}:secret:{secret}"
    return Request(f"secretsmanager:{call.operation}", secret)


def _kms(call: Call) -> Request:
    key = str(call.params.get("KeyId") or "*")
    if key != "*" and not key.startswith("arn:"):
        key = f"arn:aws:kms:{call.region}:{call.account}:key/{key}"
    # each pair of the call's encryption context is a condition key of the request
    context = {f"kms:EncryptionContext:{k}": str(v) for k, v in (call.params.get("EncryptionContext") or {}).items()}
    return Request(f"kms:{call.operation}", key, context or None)


def _no_resource(call: Call) -> Request:
    context = {"cloudwatch:namespace": str(call.params["Namespace"])} if "Namespace" in call.params else None
    return Request(call.action, "*", context)


def _rds_db(call: Call) -> Request:
    resource = (
        f"arn:aws:rds-db:{call.region}:{call.account}:dbuser:{call.params['ResourceId']}/{call.params['DBUsername']}"
    )
    return Request("rds-db:connect", resource)


# Bedrock Runtime operations -> the IAM action that authorizes them
_BEDROCK_ACTION = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}
# a cross-region inference profile's id starts with its geography
_PROFILE = re.compile(r"^(us|eu|apac|global|us-gov|ca|jp|au)\.")


def _bedrock(call: Call) -> Request:
    model = str(call.params["modelId"])
    action = f"bedrock:{_BEDROCK_ACTION.get(call.operation, call.operation)}"
    if model.startswith("arn:"):
        return Request(action, model)
    if _PROFILE.match(model):
        return Request(action, f"arn:aws:bedrock:{call.region}:{call.account}:inference-profile/{model}")
    return Request(action, f"arn:aws:bedrock:{call.region}::foundation-model/{model}")


def _events(call: Call) -> Request:
    """PutEvents is authorized on the bus its entries name (all of O's entries name one)."""
    buses = {str(e.get("EventBusName") or "default") for e in call.params.get("Entries") or [{}]}
    if len(buses) != 1:
        raise ValueError(f"entries on several buses: {sorted(buses)}")
    bus = buses.pop()
    arn = bus if bus.startswith("arn:") else f"arn:aws:events:{call.region}:{call.account}:event-bus/{bus}"
    return Request(f"events:{call.operation}", arn)


# S3 operations authorized as another action: HeadObject as GetObject, a multipart upload's steps as PutObject
_S3_ACTION = {"HeadObject": "GetObject", "CreateMultipartUpload": "PutObject", "UploadPart": "PutObject",
              "CompleteMultipartUpload": "PutObject"}  # fmt: skip


def _s3(call: Call) -> Request:
    # object operations act on arn:aws:s3:::bucket/key (S3 ARNs carry no region or account)
    key = call.params.get("Key")
    resource = f"arn:aws:s3:::{call.params['Bucket']}" + (f"/{key}" if key is not None else "")
    return Request(f"s3:{_S3_ACTION.get(call.operation, call.operation)}", resource)


def _sqs(call: Call) -> Request:
    # a queue URL is https://sqs.<region>.amazonaws.com/<account>/<name>
    name = str(call.params["QueueUrl"]).rstrip("/").rsplit("/", 1)[-1]
    return Request(f"sqs:{call.operation}", f"arn:aws:sqs:{call.region}:{call.account}:{name}")


_BY_SERVICE = {
    "events": _events,
    "s3": _s3,
    "sqs": _sqs,
    "rds-db": _rds_db,
    "lambda": _lambda,
    "states": _states,
    "secretsmanager": _secretsmanager,
    "kms": _kms,
    "cloudwatch": _no_resource,
    "bedrock": _bedrock,
}


def iam_request(call: Call) -> Request:
    """What IAM authorizes for ``call``; a service O has no rule for is an error (add one)."""
    if call.service not in _BY_SERVICE:
        raise ValueError(f"no IAM resource rule for {call.action}: teach tests/iam/recorder.py")
    return _BY_SERVICE[call.service](call)
