"""Per-version outcome figures for canary comparisons.

Every live turn reports one outcome. Locally they are rows of ``revision_outcomes`` (keyed by
revision, read with :func:`o.store.evolution.outcome_stats`); on AWS the agent-step Lambda also
reports them under the Lambda version that ran the turn, and a :class:`VersionMetrics` adapter
(:class:`o.aws.metrics.CloudWatchOutcomes`) reads them back per version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

# CloudWatch namespace of the per-agent, per-version outcome metrics
NAMESPACE = "O/Agents"


@dataclass(frozen=True)
class VersionStats:
    turns: int
    error_rate: float
    latency_ms: float
    tokens: float
    feedback: float | None = None
    feedback_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "error_rate": self.error_rate,
            "latency_ms": self.latency_ms,
            "tokens": self.tokens,
            "feedback": self.feedback,
            "feedback_count": self.feedback_count,
        }


class VersionMetrics(Protocol):
    def stats(self, agent_id: str, version: str, start: datetime, end: datetime | None = None) -> VersionStats:
        """Turns, error rate, latency and tokens of ``version`` serving ``agent_id`` since ``start``."""
        ...
