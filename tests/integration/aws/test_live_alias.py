"""One owner of the agent step's ``live`` alias: a deploy moves its primary version, the runtime its routing.

The handler (``functions/alias/handler.py``) runs for real against moto's Lambda, answering a local
stand-in for CloudFormation's response URL. ``test_a_redeploy_keeps_the_promotion_and_the_canary``
synthesizes the app twice around a simulated promotion and canary and plays what CloudFormation does
with the alias resource of each template: it sends an Update only when the resource's properties
changed, after publishing the version the template declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from o.aws.alias import LambdaAlias
from tests.cloudformation import ResponseSink, request_event, response_sink
from tests.infra.synth import synth_template
from tests.lambdas import REGION, Context, aws_credentials, fresh_handler, stub_code

RESOURCE_TYPE = "Custom::OLiveAlias"
FUNCTION = "o-agent-step"


@pytest.fixture
def lam(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    aws_credentials(monkeypatch, REGION)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        client = boto3.client("lambda", region_name=REGION)
        role = boto3.client("iam", region_name=REGION).create_role(
            RoleName="o-test", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []})
        )["Role"]["Arn"]
        client.create_function(FunctionName=FUNCTION, Runtime="python3.12", Role=role, Handler="h.h",
                               Code={"ZipFile": stub_code()})  # fmt: skip
        yield client


@pytest.fixture
def sink() -> Iterator[ResponseSink]:
    with response_sink() as s:
        yield s


@pytest.fixture
def owner(monkeypatch: pytest.MonkeyPatch) -> Any:
    with fresh_handler("functions.alias.handler") as module:
        yield module


def _send(owner: Any, sink: ResponseSink, kind: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    event = request_event(kind, sink, resource_type=RESOURCE_TYPE, logical_id="RolloutAgentStepLiveAlias",
                          properties=properties, **extra)  # fmt: skip
    owner.handler(event, Context("o-live-alias"))
    return sink.last


def _wanted(version: str) -> dict[str, Any]:
    return {"FunctionName": FUNCTION, "AliasName": "live", "Version": version}


def _routing(lam: Any) -> tuple[str, dict[str, float]]:
    alias = lam.get_alias(FunctionName=FUNCTION, Name="live")
    return alias["FunctionVersion"], dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def test_create_update_delete_answer_cloudformation(lam: Any, owner: Any, sink: ResponseSink) -> None:
    v1 = lam.publish_version(FunctionName=FUNCTION)["Version"]
    created = _send(owner, sink, "Create", _wanted(v1))
    assert created["Status"] == "SUCCESS", created
    assert created["PhysicalResourceId"] == f"{FUNCTION}:live"
    assert created["Data"]["AliasArn"].endswith(f":function:{FUNCTION}:live")
    assert sink.content_types[-1] == ""  # what the pre-signed URL is signed for
    assert _routing(lam) == (v1, {})

    # a retried Create (CloudFormation retries a resource whose answer it never got) is an update
    assert _send(owner, sink, "Create", _wanted(v1))["Status"] == "SUCCESS"
    assert _routing(lam) == (v1, {})

    deleted = _send(owner, sink, "Delete", _wanted(v1), physical_id=f"{FUNCTION}:live")
    assert deleted["Status"] == "SUCCESS", deleted
    assert not lam.list_aliases(FunctionName=FUNCTION)["Aliases"]
    # deleting again (a retried teardown) finds nothing to delete and still succeeds
    assert _send(owner, sink, "Delete", _wanted(v1), physical_id=f"{FUNCTION}:live")["Status"] == "SUCCESS"


def test_a_deploy_moves_the_primary_and_keeps_the_canary(lam: Any, owner: Any, sink: ResponseSink) -> None:
    v1 = lam.publish_version(FunctionName=FUNCTION)["Version"]
    _send(owner, sink, "Create", _wanted(v1))
    router = LambdaAlias(lam, FUNCTION)
    candidate = router.publish_candidate("evo-1")
    router.start_canary(candidate, 0.2)

    v3 = lam.publish_version(FunctionName=FUNCTION, Description="the next deploy")["Version"]
    updated = _send(owner, sink, "Update", _wanted(v3), physical_id=f"{FUNCTION}:live", old_properties=_wanted(v1))
    assert updated["Status"] == "SUCCESS", updated
    assert _routing(lam) == (v3, {candidate: 0.2}), "the deploy must not end the running canary"
    assert router.canary_evolution() == "evo-1"

    # a deploy of the canary's own version as the primary leaves nothing to compare it with
    _send(owner, sink, "Update", _wanted(candidate), physical_id=f"{FUNCTION}:live", old_properties=_wanted(v3))
    assert _routing(lam) == (candidate, {})


def test_failures_reach_cloudformation_with_their_reason(lam: Any, owner: Any, sink: ResponseSink) -> None:
    missing = _send(owner, sink, "Create", _wanted("99"))
    assert missing["Status"] == "FAILED"
    assert "99" in missing["Reason"] or "ResourceNotFound" in missing["Reason"], missing["Reason"]

    invalid = _send(owner, sink, "Create", {"FunctionName": FUNCTION})
    assert invalid["Status"] == "FAILED" and "Version" in invalid["Reason"], invalid
    # a resource whose creation failed is deleted on rollback: that must not block the teardown
    assert _send(owner, sink, "Delete", {"FunctionName": FUNCTION}, physical_id="live-alias")["Status"] == "SUCCESS"


# --- two synths around a promotion ------------------------------------------------------------------


class Stack:
    """What CloudFormation keeps of the deployed stack for the alias resource: the versions it
    published (one per ``AWS::Lambda::Version`` logical id) and the alias resource's last properties."""

    def __init__(self, lam: Any, owner: Any, sink: ResponseSink) -> None:
        self.lam, self.owner, self.sink = lam, owner, sink
        self.versions: dict[str, str] = {}
        self.properties: dict[str, Any] | None = None
        self.updates = 0

    def deploy(self, template: dict[str, Any]) -> None:
        resources = template["Resources"]
        resource, *others = [r for r in resources.values() if r["Type"] == RESOURCE_TYPE]
        assert not others, "one live alias resource"
        assert not [r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias"
                    and r["Properties"]["FunctionName"] == resource["Properties"]["FunctionName"]], \
            "CloudFormation must not own the agent step's alias as well"  # fmt: skip
        props = resource["Properties"]
        version_id, attribute = props["Version"]["Fn::GetAtt"]
        assert attribute == "Version" and resources[version_id]["Type"] == "AWS::Lambda::Version"
        if version_id not in self.versions:  # a new logical id is a new version: CloudFormation publishes it
            self.versions[version_id] = self.lam.publish_version(FunctionName=FUNCTION)["Version"]
        wanted = {"FunctionName": FUNCTION, "AliasName": props["AliasName"], "Version": self.versions[version_id]}
        if self.properties == wanted:
            return  # unchanged properties: CloudFormation does not call the resource at all
        kind = "Create" if self.properties is None else "Update"
        extra: dict[str, Any] = {}
        if self.properties is not None:
            extra = {"physical_id": f"{FUNCTION}:live", "old_properties": self.properties}
        assert _send(self.owner, self.sink, kind, wanted, **extra)["Status"] == "SUCCESS"
        self.properties = wanted
        self.updates += kind == "Update"


def test_a_redeploy_keeps_the_promotion_and_the_canary(
    lam: Any, owner: Any, sink: ResponseSink, tmp_path: Path
) -> None:
    first = synth_template(tmp_path / "first")
    stack = Stack(lam, owner, sink)
    stack.deploy(first)
    deployed = _routing(lam)[0]

    # the evolution loop promotes a candidate, then starts another canary
    router = LambdaAlias(lam, FUNCTION)
    promoted = router.publish_candidate("evo-1")
    router.start_canary(promoted, 0.1)
    router.promote(promoted)
    canary = router.publish_candidate("evo-2")
    router.start_canary(canary, 0.25)
    assert promoted != deployed

    # the same app again: the alias resource is unchanged, so the promotion and the canary stay
    stack.deploy(synth_template(tmp_path / "again"))
    assert stack.updates == 0
    assert _routing(lam) == (promoted, {canary: 0.25})

    # a deploy that changes the agent step (any code or setting publishes a new version) moves the
    # primary to it and keeps the canary running
    stack.deploy(synth_template(tmp_path / "changed", **{"o:dbName": "o_next"}))
    assert stack.updates == 1
    primary, weights = _routing(lam)
    assert primary not in (deployed, promoted) and weights == {canary: 0.25}
