"""What CloudWatch Logs does with a function's embedded-metric-format lines, for moto.

Lambda sends a function's stdout to CloudWatch Logs, which turns each EMF document into metric
data points (AWS does this; moto does not). :func:`ingest` does the same to captured output: for
every ``_aws.CloudWatchMetrics`` directive it puts each named metric with each of its dimension
sets, taking values and dimension values from the document's root, as the EMF specification says.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def documents(output: str) -> list[dict[str, Any]]:
    found = []
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "CloudWatchMetrics" in (doc.get("_aws") or {}):
            found.append(doc)
    return found


def ingest(output: str, cloudwatch: Any, namespace: str | None = None) -> int:
    """Put the metrics of every EMF document in ``output`` (of ``namespace``, when given); how many
    documents there were."""
    docs = [
        d
        for d in documents(output)
        if namespace is None or any(m["Namespace"] == namespace for m in d["_aws"]["CloudWatchMetrics"])
    ]
    for doc in docs:
        when = datetime.fromtimestamp(doc["_aws"]["Timestamp"] / 1000, UTC)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dims = [{"Name": name, "Value": str(doc[name])} for name in dimension_set]
                data = []
                for metric in directive["Metrics"]:
                    values = doc[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        data.append(
                            {
                                "MetricName": metric["Name"],
                                "Dimensions": dims,
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                                "Timestamp": when,
                            }
                        )
                cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
    return len(docs)
