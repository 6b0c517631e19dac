"""One place for Powertools logger, metrics and tracer, shared by the server and every handler."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from o.config import powertools_names

SERVICE, NAMESPACE = powertools_names()

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
# Outside Lambda there is no X-Ray daemon; Powertools disables the tracer there by itself.
tracer = Tracer(service=SERVICE)
