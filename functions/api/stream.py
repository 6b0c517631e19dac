"""Streaming API Lambda: the same FastAPI app as `o serve` and the API function, served by uvicorn
behind the AWS Lambda Web Adapter, so a response reaches API Gateway as the app writes it.

Python's managed runtime answers an invocation with one finished payload (what Mangum gives the API
function). The Web Adapter is a Lambda extension (a public layer) that runs ``run.sh`` (this module
under uvicorn on ``AWS_LWA_PORT``), turns each API Gateway event into an HTTP request to it and, with
``AWS_LWA_INVOKE_MODE=response_stream``, streams the response back through Lambda's response
streaming (``InvokeWithResponseStream``, which API Gateway calls for an integration whose
``responseTransferMode`` is ``STREAM``). ``python -m functions.api.stream`` is what ``run.sh`` runs; a
test runs the same command on a local port.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from o import runtime

# The Web Adapter's default port; the stack sets AWS_LWA_PORT explicitly.
DEFAULT_PORT = 8080


def create() -> FastAPI:
    """The app with this execution environment's one connection (as the API function's)."""
    rt = runtime.lambda_runtime()
    return runtime.api_app(rt.settings, runtime.api_services(rt.settings, rt.db))


def main() -> None:
    port = int(os.environ.get("AWS_LWA_PORT") or os.environ.get("PORT") or DEFAULT_PORT)
    # Only the adapter, on the same host, talks to it; one process: Lambda sends one request at a time.
    app = create()
    runtime.settle_heap()
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
