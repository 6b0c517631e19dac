"""Evolution Lambda: one step of the evolution state machine (see o/evolution/statemachine.py).

Event ``{"action": "reflect"|"propose"|"shadow"|"gate"|"canary"|"evaluate"|"await"|"rollback", "evolution_id",
"reason"?}``; returns ``{"evolution_id", "status", "next", "bake_seconds"}``. The work is
``o.evolution.loop.step``, the function the local driver calls too.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from o import runtime
from o.evolution import loop
from o.evolution.policy import Action
from o.observability import logger, tracer


class EvolutionEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: Action
    evolution_id: str = Field(min_length=1)
    reason: str | None = None


# Module scope: one connection per execution environment, reused across invocations.
_runtime = runtime.lambda_runtime()
_deps = runtime.evolution_of(_runtime)
runtime.settle_heap(collect=False)
# time kept to record the step's outcome (and a rollback) before Lambda's own timeout
_MARGIN_S = 30.0


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = EvolutionEvent.model_validate(event)
    logger.append_keys(evolution_id=parsed.evolution_id, action=parsed.action)
    # a shadow test that cannot finish inside this invocation ends in rollback, not in a Lambda timeout
    remaining_s = context.get_remaining_time_in_millis() / 1000 - _MARGIN_S
    deps = replace(_deps, step_deadline=time.monotonic() + max(1.0, remaining_s))
    return loop.step(deps, parsed.evolution_id, parsed.action, reason=parsed.reason).to_dict()
