"""API Lambda: the same FastAPI app as `o serve`, behind Mangum."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from o import runtime
from o.observability import logger, metrics, tracer

# Module scope: one connection per execution environment, reused across invocations.
_runtime = runtime.lambda_runtime()
_asgi = Mangum(runtime.api_app(_runtime.settings, runtime.api_services(_runtime.settings, _runtime.db)), lifespan="off")
runtime.settle_heap(collect=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    response: dict[str, Any] = _asgi(event, context)  # type: ignore[arg-type]
    metrics.add_metric(name="ApiRequests", unit=MetricUnit.Count, value=1)
    if response.get("statusCode", 500) >= 500:
        metrics.add_metric(name="ApiServerErrors", unit=MetricUnit.Count, value=1)
    return response
