"""One place for Powertools logger, metrics and tracer, shared by the server and every handler."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from o.config import powertools_names

SERVICE, NAMESPACE = powertools_names()

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Outside Lambda there is no X-Ray daemon; Powertools disables the tracer there by itself. Only botocore
# is patched (each AWS call a subsegment): left to itself the tracer imports and patches every library
# X-Ray knows that is installed (httpx, requests, sqlite3, …), none of which O calls through, at every
# cold start.
tracer = Tracer(service=SERVICE, patch_modules=("botocore",))
