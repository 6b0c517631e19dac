"""The agent step's ``live`` alias as a CloudFormation custom resource (``Custom::OLiveAlias``).

The alias has two owners with separate jobs: a deploy decides which code serves (the version it
publishes becomes the primary), the evolution loop decides the routing (a canary's weighted extra
version, its promotion or rollback). A plain ``AWS::Lambda::Alias`` would make CloudFormation reset
the routing on every deploy and undo a canary; this resource moves only the primary version
(``o.aws.alias.point_live_at``). Deleting the stack deletes the alias.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from pydantic import BaseModel, ConfigDict, ValidationError

from o import runtime
from o.aws.alias import delete_alias, point_live_at
from o.aws.cloudformation import respond
from o.config import build_settings

logger = Logger(service="o-live-alias")


class LiveAlias(BaseModel):
    model_config = ConfigDict(extra="ignore")

    FunctionName: str
    AliasName: str
    Version: str


@logger.inject_lambda_context(log_event=True)
def handler(event: dict[str, Any], context: Any) -> None:
    answer = functools.partial(respond, event, policy=runtime.outbound_policy(build_settings()))
    physical_id = str(event.get("PhysicalResourceId") or "live-alias")
    try:
        wanted = LiveAlias.model_validate(event.get("ResourceProperties") or {})
    except ValidationError as exc:
        # a resource that never existed has nothing to delete: failing would block the teardown
        status = "SUCCESS" if event.get("RequestType") == "Delete" else "FAILED"
        answer(status, f"invalid properties: {exc}", physical_id)
        return
    physical_id = f"{wanted.FunctionName}:{wanted.AliasName}"
    try:
        if event["RequestType"] == "Delete":
            delete_alias(wanted.FunctionName, wanted.AliasName)
            answer("SUCCESS", "alias deleted", physical_id)
            return
        arn = point_live_at(wanted.FunctionName, wanted.AliasName, wanted.Version)
        answer("SUCCESS", f"{wanted.AliasName} serves version {wanted.Version}", physical_id, {"AliasArn": arn})
    except Exception as exc:  # CloudFormation must hear about every failure, or it waits an hour
        logger.exception("live alias failed")
        answer("FAILED", f"{type(exc).__name__}: {exc}", physical_id)
