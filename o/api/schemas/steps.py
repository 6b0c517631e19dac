"""Steps in Letta's shapes: ``Step``, the step's metrics, its provider trace, and a run's trace spans."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

# O's step states as Letta's ``Step.status`` (pending / success / failed / cancelled)
_STATUS = {"pending": "pending", "llm_done": "pending", "awaiting_approval": "pending", "completed": "success"}
_NS_PER_MS = 1_000_000


def step_status(row: dict[str, Any]) -> str:
    if row.get("error"):
        return "failed"
    if row.get("stop_reason") == "cancelled":
        return "cancelled"
    return _STATUS.get(row["status"], "pending")


def _provider(row: dict[str, Any]) -> str | None:
    trace = row.get("trace") or {}
    provider = (trace.get("request") or {}).get("provider") or (row.get("agent_llm_config") or {}).get(
        "model_endpoint_type"
    )
    return str(provider) if provider else None


def step_object(row: dict[str, Any]) -> dict[str, Any]:
    """Letta's ``Step`` (plus ``cost_usd``: the call's list-price cost, None for a model O does not price)."""
    usage = row.get("usage") or {}
    config = row.get("agent_llm_config") or {}
    provider = _provider(row)
    model = row.get("model")
    return {
        "id": row["id"],
        "agent_id": row["agent_id"],
        "run_id": row["run_id"],
        "trace_id": row["run_id"],
        "model": model,
        "model_endpoint": config.get("model_endpoint"),
        "model_handle": f"{provider}/{model}" if provider and model else None,
        "provider_name": provider,
        "provider_category": "base" if provider else None,
        "context_window_limit": config.get("context_window"),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "total_tokens": usage.get("total_tokens"),
        "status": step_status(row),
        "stop_reason": row.get("stop_reason"),
        "error_type": "StepError" if row.get("error") else None,
        "error_data": {"message": row["error"]} if row.get("error") else None,
        "feedback": row.get("feedback"),
        "tags": list(row.get("feedback_tags") or []),
        "cost_usd": row.get("cost_usd"),
    }


def _ns(moment: datetime) -> int:
    return int(moment.timestamp() * 1e9)


def timings(row: dict[str, Any]) -> dict[str, int | None]:
    """Where a step's time went, in nanoseconds: the whole step, the LLM call, its tools."""
    llm_ms = float((row.get("usage") or {}).get("llm_ms") or 0.0)
    stored = row["created_at"]  # when the reply was stored, right after the LLM answered
    llm_start = stored - timedelta(milliseconds=llm_ms)
    start = row.get("started_at") or llm_start
    end = row.get("completed_at") or stored
    tool_ms = row.get("tool_ms")
    return {
        "step_start_ns": _ns(start),
        "step_ns": max(0, _ns(end) - _ns(start)),
        "llm_request_start_ns": _ns(llm_start),
        "llm_request_ns": int(llm_ms * _NS_PER_MS),
        "tool_execution_ns": None if tool_ms is None else int(float(tool_ms) * _NS_PER_MS),
    }


def metrics_object(row: dict[str, Any]) -> dict[str, Any]:
    """Letta's step metrics."""
    return {"id": row["id"], "agent_id": row["agent_id"], "run_id": row["run_id"], **timings(row)}


def provider_trace(row: dict[str, Any]) -> dict[str, Any] | None:
    """Letta's ``ProviderTrace`` of a step: what was asked of the provider and what it answered."""
    trace = row.get("trace")
    if not trace:
        return None
    return {
        "id": f"provider_trace-{row['id'].removeprefix('step-')}",
        "step_id": row["id"],
        "agent_id": row["agent_id"],
        "run_id": row["run_id"],
        "org_id": row["organization_id"],
        "agent_tags": list(row.get("agent_tags") or []),
        "call_type": "agent_step",
        "source": "o",
        "llm_config": row.get("agent_llm_config"),
        "request_json": trace.get("request") or {},
        "response_json": trace.get("response") or {},
        "latency_ms": round(float(trace.get("llm_ms") or 0.0)),
        "created_at": row["created_at"],
    }


def _span(
    run_id: str,
    span_id: str,
    parent: str | None,
    name: str,
    start_ns: int,
    duration_ns: int,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    return {
        "trace_id": run_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "span_name": name,
        "start_time_ns": start_ns,
        "duration_ns": max(0, duration_ns),
        "status_code": "ERROR" if attributes.get("error") else "OK",
        "span_attributes": attributes,
    }


def run_spans(run: dict[str, Any], steps: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """A run's trace as spans: the run (root), each agent step, its LLM request and its tool execution."""
    start = _ns(run["created_at"])
    end = _ns(run["completed_at"]) if run.get("completed_at") else max([start, *(_step_end(s) for s in steps)])
    spans = [_span(run["id"], run["id"], None, "agent_run", start, end - start, {"agent_id": run["agent_id"]})]
    for row in steps:
        t = timings(row)
        step_start, llm_start = t["step_start_ns"] or 0, t["llm_request_start_ns"] or 0
        attributes = {"step_index": row["step_index"], "model": row.get("model"), "error": row.get("error")}
        spans.append(_span(run["id"], row["id"], run["id"], "agent_step", step_start, t["step_ns"] or 0, attributes))
        usage = row.get("usage") or {}
        llm_attrs = {
            "model": row.get("model"),
            "prompt_tokens": usage.get("prompt_tokens"),
            "cost_usd": row.get("cost_usd"),
        }
        spans.append(
            _span(
                run["id"], f"{row['id']}/llm", row["id"], "llm_request", llm_start, t["llm_request_ns"] or 0, llm_attrs
            )
        )
        if t["tool_execution_ns"] is not None:
            tools = [c.get("function", {}).get("name") or c.get("name") for c in row.get("tool_calls") or []]
            tool_start = _ns(row["created_at"])
            tool_attrs = {"tools": tools}
            spans.append(
                _span(
                    run["id"],
                    f"{row['id']}/tools",
                    row["id"],
                    "tool_execution",
                    tool_start,
                    t["tool_execution_ns"],
                    tool_attrs,
                )
            )
    return spans[:limit]


def _step_end(row: dict[str, Any]) -> int:
    return _ns(row.get("completed_at") or row["created_at"])
