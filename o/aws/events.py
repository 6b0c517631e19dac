"""Evolution decisions on an EventBridge bus: the AWS side of :class:`o.evolution.notify.DecisionEvents`."""

from __future__ import annotations

import json
from typing import Any

import boto3

from o.evolution.notify import SOURCE


class EventBridgeEvents:
    def __init__(self, client: Any | None = None, bus: str = "default") -> None:
        self._client = client
        self.bus = bus

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("events")
        return self._client

    def publish(self, detail_type: str, detail: dict[str, Any], webhook_url: str | None) -> None:
        # the owner's webhook is for `o serve`; on AWS owners route the bus's events with rules
        entry = {"Source": SOURCE, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": self.bus}
        answer = self.client.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused the event: {answer['Entries']}")
