"""One place for Powertools logger, metrics and tracer, shared by the server and every handler."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "o")

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "O"), service=SERVICE)
# Outside Lambda there is no X-Ray daemon; Powertools disables the tracer there by itself.
tracer = Tracer(service=SERVICE)
