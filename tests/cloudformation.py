"""CloudFormation's side of a custom resource: the request events it sends and its response URL.

CloudFormation's pre-signed S3 URL is stood in for by a local HTTP server that records each PUT, so
tests check the exact bytes CloudFormation would receive.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/O/abc"


@dataclass
class ResponseSink:
    url: str
    received: list[dict[str, Any]] = field(default_factory=list)
    content_types: list[str | None] = field(default_factory=list)

    @property
    def last(self) -> dict[str, Any]:
        assert self.received, "the custom resource never answered CloudFormation"
        return self.received[-1]


@contextmanager
def response_sink() -> Iterator[ResponseSink]:
    sink = ResponseSink(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            sink.received.append(json.loads(body))
            sink.content_types.append(self.headers.get("Content-Type"))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_port}/response?X-Amz-Signature=x"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def request_event(
    kind: str,
    sink: ResponseSink,
    *,
    resource_type: str,
    logical_id: str,
    properties: dict[str, Any],
    physical_id: str | None = None,
    old_properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The event CloudFormation invokes a custom resource's function with."""
    event: dict[str, Any] = {
        "RequestType": kind,
        "ResponseURL": sink.url,
        "StackId": STACK_ID,
        "RequestId": str(uuid.uuid4()),
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:owner", **properties},
    }
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    if old_properties is not None:
        event["OldResourceProperties"] = old_properties
    return event
