"""Per-agent, per-version outcome metrics in CloudWatch: the AWS side of
:class:`o.agent.serving.OutcomeMetrics` (writing) and :class:`o.evolution.metrics.VersionMetrics`
(reading).

Outcomes are written as CloudWatch embedded metric format (Powertools Metrics) to the function's
log, which costs no API call on the step's path; CloudWatch turns the log lines into metrics under
namespace ``O/Agents`` with dimensions ``AgentId`` and ``ExecutedVersion`` (the same name as the
AWS/Lambda dimension, because Lambda's own metrics cannot say which agent a turn served). The canary
reads them back with ``GetMetricData``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from o.agent.serving import Turn
from o.evolution.metrics import NAMESPACE, VersionStats


class CloudWatchOutcomes:
    def __init__(self, cloudwatch: Any | None = None, namespace: str = NAMESPACE) -> None:
        self._client = cloudwatch
        self.namespace = namespace

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("cloudwatch")
        return self._client

    @staticmethod
    def _dims(agent_id: str, version: str) -> list[dict[str, str]]:
        return [{"Name": "AgentId", "Value": agent_id}, {"Name": "ExecutedVersion", "Value": version}]

    def put_outcome(self, agent_id: str, version: str, turn: Turn) -> None:
        # service="": no default `service` dimension, so the metrics keep exactly the two dimensions
        # the canary queries by (a metric is found only by its full dimension set)
        metrics = EphemeralMetrics(namespace=self.namespace, service="")
        metrics.add_dimension(name="AgentId", value=agent_id)
        metrics.add_dimension(name="ExecutedVersion", value=version)
        metrics.add_metric(name="Turns", unit=MetricUnit.Count, value=1)
        metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=0 if turn.ok else 1)
        metrics.add_metric(name="LatencyMs", unit=MetricUnit.Milliseconds, value=turn.latency_ms)
        metrics.add_metric(name="Tokens", unit=MetricUnit.Count, value=turn.tokens)
        metrics.flush_metrics()

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
            ],
            StartTime=start,
            EndTime=end,
        )
        values = {r["Id"]: r["Values"] for r in result["MetricDataResults"]}
        turns = int(sum(values.get("turns") or []))
        return VersionStats(
            turns=turns,
            error_rate=float(sum(values.get("errors") or [])) / turns if turns else 0.0,
            latency_ms=_mean(values.get("latency")),
            tokens=_mean(values.get("tokens")),
        )


def _mean(values: list[float] | None) -> float:
    return float(sum(values) / len(values)) if values else 0.0
