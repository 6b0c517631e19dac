"""Per-version outcome metrics for canary comparisons.

Every live turn reports one outcome. Locally they go to ``revision_outcomes`` (keyed by revision);
on AWS they also go to CloudWatch under namespace ``O/Agents`` with dimensions ``AgentId`` and
``ExecutedVersion`` (the Lambda version that ran the turn — the same name as the AWS/Lambda
dimension, because Lambda's own metrics cannot say which agent a turn served).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

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


class CloudWatchMetrics:
    def __init__(self, cloudwatch: Any, namespace: str = NAMESPACE) -> None:
        self.client = cloudwatch
        self.namespace = namespace

    @staticmethod
    def _dims(agent_id: str, version: str) -> list[dict[str, str]]:
        return [{"Name": "AgentId", "Value": agent_id}, {"Name": "ExecutedVersion", "Value": version}]

    def put_outcome(
        self,
        agent_id: str,
        version: str,
        *,
        ok: bool,
        latency_ms: float,
        tokens: int,
        timestamp: datetime | None = None,
    ) -> None:
        dims = self._dims(agent_id, version)
        when = {"Timestamp": timestamp} if timestamp else {}
        self.client.put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {"MetricName": "Turns", "Dimensions": dims, "Value": 1.0, "Unit": "Count", **when},
                {"MetricName": "Errors", "Dimensions": dims, "Value": 0.0 if ok else 1.0, "Unit": "Count", **when},
                {
                    "MetricName": "LatencyMs",
                    "Dimensions": dims,
                    "Value": float(latency_ms),
                    "Unit": "Milliseconds",
                    **when,
                },
                {"MetricName": "Tokens", "Dimensions": dims, "Value": float(tokens), "Unit": "Count", **when},
            ],
        )

    def put_feedback(self, agent_id: str, version: str, score: float) -> None:
        self.client.put_metric_data(
            Namespace=self.namespace,
            MetricData=[
                {
                    "MetricName": "Feedback",
                    "Dimensions": self._dims(agent_id, version),
                    "Value": float(score),
                    "Unit": "None",
                },
            ],
        )

    def stats(self, agent_id: str, version: str, start: datetime, end: datetime | None = None) -> VersionStats:
        end = end or datetime.now(start.tzinfo) + timedelta(minutes=1)
        dims = self._dims(agent_id, version)
        period = max(60, int((end - start).total_seconds() // 60 + 1) * 60)

        def query(qid: str, metric: str, stat: str) -> dict[str, Any]:
            return {
                "Id": qid,
                "MetricStat": {
                    "Metric": {"Namespace": self.namespace, "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }

        result = self.client.get_metric_data(
            MetricDataQueries=[
                query("turns", "Turns", "Sum"),
                query("errors", "Errors", "Sum"),
                query("latency", "LatencyMs", "Average"),
                query("tokens", "Tokens", "Average"),
                query("feedback", "Feedback", "Average"),
                query("feedbackn", "Feedback", "SampleCount"),
            ],
            StartTime=start,
            EndTime=end,
        )
        values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}

        def total(qid: str) -> float:
            return float(sum(values.get(qid) or []))

        def mean(qid: str) -> float | None:
            got = values.get(qid) or []
            return float(sum(got) / len(got)) if got else None

        turns = int(total("turns"))
        return VersionStats(
            turns=turns,
            error_rate=total("errors") / turns if turns else 0.0,
            latency_ms=mean("latency") or 0.0,
            tokens=mean("tokens") or 0.0,
            feedback=mean("feedback"),
            feedback_count=int(total("feedbackn")),
        )
