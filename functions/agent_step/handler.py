"""Agent-step Lambda: one action of the agent-loop state machine (see infra/agent_loop.py).

Event ``{"action": "step"|"tools"|"await_approval"|"fail", "run_id", "iteration", "task_token"?,
"error"?}``; returns ``{"run_id", "iteration", "next", "stop_reason"}``. The work is
``o.agent.step.advance``, the same function the local runner loops over; ``fail`` comes from the
state machine's Catch with its ``{"Error", "Cause"}`` and marks the run failed.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from o import runtime
from o.agent import workflow
from o.agent.engine import Engine, default_engine
from o.config import load_settings
from o.evolution import routing
from o.evolution.metrics import CloudWatchMetrics
from o.observability import logger, metrics, tracer


class StepEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["step", "tools", "await_approval", "fail"]
    run_id: str = Field(min_length=1)
    iteration: int = Field(ge=0)
    task_token: str | None = None
    error: dict[str, Any] | None = None


# Module scope: one connection (prepared statements off for RDS Proxy) reused across invocations.
_runtime = runtime.start(load_settings(), migrate_schema=False)
_engine: Engine = default_engine(_runtime.db)
# Per-version outcomes for canaries on the `live` alias; created on first use, like the engine's SFN client.
_outcomes: CloudWatchMetrics | None = None


def outcomes() -> CloudWatchMetrics:
    global _outcomes
    if _outcomes is None:
        import boto3

        _outcomes = CloudWatchMetrics(boto3.client("cloudwatch"))
    return _outcomes


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = StepEvent.model_validate(event)
    logger.append_keys(run_id=parsed.run_id, action=parsed.action, iteration=parsed.iteration)
    result = workflow.perform(
        _engine,
        parsed.action,
        parsed.run_id,
        parsed.iteration,
        task_token=parsed.task_token,
        error=parsed.error,
        version=context.function_version,
    )
    if result["next"] in ("done", "failed"):
        routing.publish_outcome(_engine.db, outcomes(), parsed.run_id, context.function_version)
    metrics.add_metric(name="AgentActions", unit=MetricUnit.Count, value=1)
    if result["next"] == "failed":
        metrics.add_metric(name="AgentRunsFailed", unit=MetricUnit.Count, value=1)
    return result
