"""Answering a CloudFormation custom resource: the response goes to the pre-signed S3 URL in the event.

A custom resource that never answers blocks its stack for an hour, so callers answer on every path,
failures included (with a reason CloudFormation shows in the stack's events). The URL comes from
CloudFormation, not from a tenant, but it goes through the outbound policy like every other call.
"""

from __future__ import annotations

import json
from typing import Any

from o.net.outbound import OutboundPolicy
from o.net.transport import http_client

# CloudFormation keeps at most 4 KB of a response; the reason is what a person reads
REASON_LIMIT = 3_000


def respond(
    event: dict[str, Any],
    status: str,
    reason: str,
    physical_id: str,
    data: dict[str, Any] | None = None,
    *,
    policy: OutboundPolicy,
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": reason[:REASON_LIMIT],
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data or {},
        }
    ).encode()
    # The pre-signed S3 URL is signed for an empty content type.
    with http_client(policy) as client:
        client.put(event["ResponseURL"], content=body, headers={"Content-Type": ""}, timeout=30).raise_for_status()
