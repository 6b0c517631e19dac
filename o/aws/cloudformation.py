"""Answering a CloudFormation custom resource: the response goes to the pre-signed S3 URL in the event.

A custom resource that never answers blocks its stack for an hour, so callers answer on every path,
failures included (with a reason CloudFormation shows in the stack's events).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

# CloudFormation keeps at most 4 KB of a response; the reason is what a person reads
REASON_LIMIT = 3_000


def respond(
    event: dict[str, Any], status: str, reason: str, physical_id: str, data: dict[str, Any] | None = None
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
    request = urllib.request.Request(
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
