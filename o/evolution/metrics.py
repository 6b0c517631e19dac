"""Per-version outcome figures for canary comparisons.

Every live turn reports one outcome. Locally they are rows of ``revision_outcomes`` (keyed by
revision, read with :func:`o.store.evolution.outcome_stats`); on AWS the agent-step Lambda also
reports them under the Lambda version that ran the turn, and a :class:`VersionMetrics` adapter
(:class:`o.aws.metrics.CloudWatchOutcomes`) reads them back per version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

# CloudWatch namespace of the per-agent, per-version outcome metrics
NAMESPACE = "O/Agents"


@dataclass(frozen=True)
class LiveSamples:
    """One revision's live turns in a canary window, one value per turn: what the rank tests compare.

    They come from ``revision_outcomes`` (each run's outcome, recorded under the revision that served
    it in the transaction that ends the run, on AWS as locally), with the run's failed tool calls."""

    errors: list[float]  # 1.0 for a failed turn
    latency_ms: list[float]
    tokens: list[float]
    tool_failures: list[float]  # failed tool calls in the turn
    # the judge's scores of the sampled replies among these turns (o.evolution.live_judge), in [0, 1]
    judge: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class VersionStats:
    turns: int
    error_rate: float
    latency_ms: float
    tokens: float
    feedback: float | None = None
    feedback_count: int = 0
    # per-turn values for the rank tests; None where only aggregates are known (then tolerances decide)
    samples: LiveSamples | None = None

    @property
    def tool_failure_rate(self) -> float:
        """Failed tool calls per turn."""
        if self.samples is None or not self.samples.tool_failures:
            return 0.0
        return sum(self.samples.tool_failures) / len(self.samples.tool_failures)

    @property
    def judge_scores(self) -> list[float]:
        return self.samples.judge if self.samples is not None else []

    def as_dict(self) -> dict[str, Any]:
        judged = self.judge_scores
        return {
            "judge_score": round(sum(judged) / len(judged), 4) if judged else None,
            "judge_count": len(judged),
            "tool_failures_per_turn": round(self.tool_failure_rate, 4),
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
