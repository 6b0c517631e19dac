"""What every evolution step needs (:class:`EvolutionDeps`) and what it answers (:class:`StepResult`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from o.agent.engine import Engine
from o.agent.runner import Executions
from o.config import EvolutionSettings
from o.evolution.metrics import VersionMetrics
from o.evolution.notify import DecisionEvents
from o.evolution.rollout import AliasRouter
from o.store.db import Database
from o.store.evolution import EvolutionStatus


@dataclass
class EvolutionDeps:
    db: Database
    # runs shadow replays through the real agent loop and builds LLM clients (engine.llm)
    engine: Engine
    policy: EvolutionSettings = field(default_factory=EvolutionSettings)
    # AWS: the weighted Lambda alias that carries canaries; None: the local router
    router: AliasRouter | None = None
    # AWS: per-version outcome figures of the alias's versions
    metrics: VersionMetrics | None = None
    # AWS: the evolution state machine; None: evolutions run in this process
    executions: Executions | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # (evolution_id, phase, message): the CLI prints these as progress
    progress: Callable[[str, str, str], None] | None = None
    # time.monotonic() by which one step must be done (a Lambda's remaining time); None = no limit
    step_deadline: float | None = None
    # where promotions and rollbacks are told (EventBridge on AWS, the owner's webhook locally); None: nowhere
    events: DecisionEvents | None = None


@dataclass(frozen=True)
class StepResult:
    evolution_id: str
    status: EvolutionStatus
    next: str  # an action, or "done"
    bake_seconds: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "evolution_id": self.evolution_id,
            "status": self.status.value,
            "next": self.next,
            "bake_seconds": self.bake_seconds,
        }


class Stop(Exception):
    """A step found a reason to end the evolution in rollback (budget, stop request, tampering...)."""
