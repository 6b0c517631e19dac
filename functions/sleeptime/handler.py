"""Sleep-time Lambda, woken by EventBridge Scheduler (see infra/sleeptime.py).

Event ``{"kind": "sleeptime", "scope": "due-agents"}`` sweeps every due agent (N new user messages, or
the interval elapsed with anything new) within the invocation's remaining time; ``{"agent_id",
"organization_id"}`` runs one pass for one agent (per-agent schedules). A pass may start an evolution,
which then runs as its own Step Functions execution.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict

from o import runtime
from o.evolution import sleeptime
from o.observability import logger, tracer


class SleeptimeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: str = "sleeptime"
    scope: str = "due-agents"
    agent_id: str | None = None
    organization_id: str | None = None


_runtime = runtime.lambda_runtime()
_deps = runtime.evolution_of(_runtime)
runtime.settle_heap(collect=False)
# leave time to record the last pass before Lambda's own timeout
_MARGIN_MS = 60_000


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    parsed = SleeptimeEvent.model_validate(event or {})
    if parsed.agent_id:
        if not parsed.organization_id:
            raise ValueError("a per-agent sleep-time event needs organization_id too")
        results = [
            sleeptime.run_pass(
                _deps, parsed.organization_id, parsed.agent_id, trigger="schedule", policy=_runtime.settings.sleeptime
            )
        ]
    else:
        remaining_s = max(1.0, (context.get_remaining_time_in_millis() - _MARGIN_MS) / 1000)
        results = sleeptime.sweep(_deps, _runtime.settings.sleeptime, deadline_s=remaining_s)
    return {"passes": [r.as_dict() for r in results]}
