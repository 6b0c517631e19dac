"""Reflection and proposal: what went wrong lately, and one candidate revision to fix it (LLM).

The proposer sees the reflection (recent runs, errors, feedback, cost, latency, failing
evaluation cases, and the agent's own evolution history recalled from its archival memory)
and the current configuration, and must answer with JSON ``{"rationale", "changes"}`` where
``changes`` touches only evolvable keys. The answer is validated before anything is stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from o.agent import revisions
from o.errors import InvalidInput
from o.evolution.evaluator import EVALUATOR_KEYS, parse_json_object
from o.llm.client import LLMClient
from o.llm.types import ChatMessage, ChatRequest
from o.store import reflection as reflection_store
from o.store.db import Conn

PROPOSER_MARKER = "You propose one improvement to an AI agent's configuration."
RECENT_RUNS = 50
RECENT_INPUTS = 20
RECENT_FEEDBACK = 50
HISTORY_RECALL = 5


class EvaluatorTampering(InvalidInput):
    """A proposal tried to change the evaluator, the evaluation cases or the gate."""

    code = "evaluator_tampering"


class Proposal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(min_length=1, max_length=4000)
    changes: dict[str, Any]


@dataclass
class Proposed:
    config: dict[str, Any]
    rationale: str
    tokens: int


def reflect(conn: Conn, agent_id: str) -> dict[str, Any]:
    """Facts about the agent's recent behaviour, all from durable state."""
    runs = reflection_store.recent_runs(conn, agent_id, RECENT_RUNS)
    feedback = reflection_store.recent_feedback(conn, agent_id, RECENT_FEEDBACK)
    inputs = reflection_store.recent_user_inputs(conn, agent_id, RECENT_INPUTS)
    history = reflection_store.evolution_memories(conn, agent_id, HISTORY_RECALL)
    return {
        **run_figures(runs),
        "feedback": feedback_figures(feedback),
        "recent_inputs": [text[:2000] for text in inputs],
        "history": [text[:1500] for text in history],
    }


def run_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """How many runs, how many failed and why, and their mean tokens and latency."""
    n = len(runs)
    errors = [r for r in runs if r["status"] == "failed" or r["error"]]
    tokens = [int((r["usage"] or {}).get("total_tokens", 0)) for r in runs]
    latencies = [float(r["ms"] or 0) for r in runs]
    return {
        "runs": n,
        "error_rate": round(len(errors) / n, 4) if n else 0.0,
        "errors": sorted({(r["error"] or r["stop_reason"] or "failed")[:200] for r in errors})[:10],
        "mean_tokens": round(sum(tokens) / n, 1) if n else 0.0,
        "mean_latency_ms": round(sum(latencies) / n, 1) if n else 0.0,
    }


def feedback_figures(feedback: list[dict[str, Any]]) -> dict[str, Any]:
    """How many scores, their mean, and the lowest ones (below 0.5) with the replies they rate."""
    scores = [float(f["score"]) for f in feedback]
    lowest = sorted(feedback, key=lambda f: f["score"])[:5]
    return {
        "count": len(scores),
        "mean": round(sum(scores) / len(scores), 4) if scores else None,
        "low_scored": [
            {"score": f["score"], "comment": f["comment"], "reply": (f["reply"] or "")[:300]}
            for f in lowest
            if f["score"] < 0.5
        ],
    }


def proposal_request(config: dict[str, Any], reflection: dict[str, Any], cases: list[dict[str, Any]]) -> ChatRequest:
    shown = {k: v for k, v in reflection.items() if k != "recent_inputs"}
    return ChatRequest(
        messages=[
            ChatMessage.system(
                f"{PROPOSER_MARKER}\n"
                "You may change only these keys of the configuration: system, blocks (label, limit, description, "
                "read_only — never values), tool_ids, tool_rules, llm_config. You must never change the evaluation "
                "cases, the judge or the gate. Learn from the evolution history: do not repeat a change that was "
                "rolled back. Answer with JSON only: "
                '{"rationale": "<why this change should help>", "changes": {<only the keys you change>}}'
            ),
            ChatMessage.user(
                json.dumps(
                    {
                        "current_configuration": config,
                        "reflection": shown,
                        "evaluation_cases": cases,
                    },
                    default=str,
                )
            ),
        ],
        temperature=0.2,
        max_tokens=2000,
    )


def parse_proposal(text: str, current: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The candidate configuration and rationale from the model's answer; raises InvalidInput."""
    try:
        proposal = Proposal.model_validate(parse_json_object(text))
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(f"the proposal is not valid JSON of the expected shape: {exc}") from exc
    touched = EVALUATOR_KEYS & set(proposal.changes)
    if touched:
        raise EvaluatorTampering(f"the candidate tried to change the evaluator ({sorted(touched)}); refused")
    candidate = dict(current)
    for key, value in proposal.changes.items():
        if key == "llm_config" and isinstance(value, dict):
            # model settings are merged: a proposal names only the settings it changes
            candidate["llm_config"] = {**current["llm_config"], **value}
        else:
            candidate[key] = value
    candidate = revisions.normalize(candidate)
    if revisions.config_hash(candidate) == revisions.config_hash(revisions.normalize(current)):
        raise InvalidInput("the proposal changes nothing")
    return candidate, proposal.rationale


def propose(
    client: LLMClient, config: dict[str, Any], reflection: dict[str, Any], cases: list[dict[str, Any]]
) -> Proposed:
    response = client.chat(proposal_request(config, reflection, cases))
    candidate, rationale = parse_proposal(response.content or "", config)
    return Proposed(candidate, rationale, response.usage.total_tokens)
