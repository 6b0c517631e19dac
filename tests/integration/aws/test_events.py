"""Evolution decisions on EventBridge (moto): an owner's rule on the default bus receives them."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from o.aws.events import EventBridgeEvents
from o.evolution.notify import SOURCE
from tests.lambdas import REGION, aws_credentials


def test_a_decision_reaches_an_owners_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    aws_credentials(monkeypatch, REGION)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="owner")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events", region_name=REGION)
        events.put_rule(Name="evolutions", EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="evolutions", Targets=[{"Id": "owner", "Arn": queue_arn}])

        detail = {"evolution_id": "evolution-1", "agent_id": "agent-1", "decision": "promoted"}
        EventBridgeEvents(events).publish("Evolution promoted", detail, webhook_url="https://ignored.example")
        [message] = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]
        delivered = json.loads(message["Body"])
        assert delivered["source"] == SOURCE and delivered["detail-type"] == "Evolution promoted"
        assert delivered["detail"] == detail
        # a bus that does not exist is an error the caller logs (the decision stands)
        with pytest.raises((RuntimeError, ClientError)):
            EventBridgeEvents(events, bus="no-such-bus").publish("Evolution promoted", detail, None)
