"""Agent-step Lambda: one action of the agent-loop state machine (see infra/agent_loop.py).

Event ``{"action": "step"|"tools"|"await_approval"|"fail", "run_id", "iteration", "conversation_id"?,
"task_token"?, "error"?}``; returns ``{"run_id", "iteration", "conversation_id", "next", "stop_reason"}``
(the conversation travels with the run's id so each state, log line and trace names it). The work is
``o.agent.step.advance``, the same function the local runner loops over; ``fail`` comes from the
state machine's Catch with its ``{"Error", "Cause"}`` and marks the run failed.
"""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from o import runtime
from o.agent import serving, workflow
from o.observability import logger, metrics, tracer


class StepEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Literal["step", "tools", "await_approval", "fail"]
    run_id: str = Field(min_length=1)
    iteration: int = Field(ge=0)
    # the run's conversation of its agent (None: the agent's own history); the run row is the truth
    conversation_id: str | None = None
    task_token: str | None = None
    error: dict[str, Any] | None = None


# Module scope: one connection (prepared statements off for RDS Proxy) reused across invocations.
_runtime = runtime.lambda_runtime()
_engine = runtime.agent_engine(_runtime.settings, _runtime.db, in_state_machine=True)
# Per-version outcomes for canaries on the `live` alias (EMF in this function's log).
_outcomes = runtime.outcome_metrics()
runtime.settle_heap(collect=False)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = StepEvent.model_validate(event)
    logger.append_keys(
        run_id=parsed.run_id, action=parsed.action, iteration=parsed.iteration, conversation_id=parsed.conversation_id
    )
    result = workflow.perform(
        _engine,
        parsed.action,
        parsed.run_id,
        parsed.iteration,
        task_token=parsed.task_token,
        error=parsed.error,
        version=context.function_version,
    )
    result["conversation_id"] = parsed.conversation_id
    if result["next"] in ("done", "failed"):
        serving.publish_outcome(_engine.db, _outcomes, parsed.run_id, context.function_version)
    metrics.add_metric(name="AgentActions", unit=MetricUnit.Count, value=1)
    if result["next"] == "failed":
        metrics.add_metric(name="AgentRunsFailed", unit=MetricUnit.Count, value=1)
    return result
