"""Reflection and proposal: what went wrong lately, and one candidate revision to fix it (LLM).

The proposer sees the reflection (recent runs, errors, feedback, cost, latency, failing
evaluation cases, and the agent's own evolution history recalled from its archival memory)
and the current configuration, and must answer with JSON ``{"rationale", "changes"}`` where
``changes`` touches only evolvable keys. The answer is validated before anything is stored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from o.agent import revisions
from o.errors import InvalidInput
from o.evolution.evaluator import EVALUATOR_KEYS, load_suite, parse_json_object
from o.llm.client import LLMClient
from o.llm.types import ChatMessage, ChatRequest
from o.store import reflection as reflection_store
from o.store.db import Conn
from o.tools.evaluator_lock import PROPOSER_MARKER

RECENT_RUNS = 50
RECENT_INPUTS = 20
RECENT_FEEDBACK = 50
HISTORY_RECALL = 5
RECENT_FAILURES = 10
ATTEMPTS = 10


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
    traces = reflection_store.failed_traces(conn, agent_id, RECENT_FAILURES)
    # a held-out case measures generalisation only while the proposer has never seen it, even as a trace
    held_out = {c.input for c in load_suite(conn, agent_id).held_out_cases()}
    return {
        **run_figures(runs),
        "feedback": feedback_figures(feedback),
        "recent_inputs": [text[:2000] for text in inputs],
        "history": [text[:1500] for text in history],
        "failed_traces": [trace_figures(t) for t in traces if (t["input"] or "") not in held_out],
        "attempts": [attempt_figures(a) for a in reflection_store.attempts(conn, agent_id, ATTEMPTS)],
    }


def trace_figures(trace: dict[str, Any]) -> dict[str, Any]:
    """A failed or badly rated run as the proposer reads it: what was asked, what was answered, what went wrong."""
    return {
        "input": (trace["input"] or "")[:500],
        "reply": (trace["reply"] or "")[:500],
        "error": (trace["error"] or "")[:300] or None,
        "score": trace["score"],
        "comment": (trace["comment"] or "")[:300] or None,
    }


def attempt_figures(attempt: dict[str, Any]) -> dict[str, Any]:
    """An earlier evolution: what it changed, whether it was kept, and why."""
    return {
        "decision": attempt["decision"],
        "reason": (attempt["reason"] or "")[:300],
        "rationale": (attempt["rationale"] or "")[:300],
        "change": revisions.describe_diff(attempt["diff"] or {})[:800],
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


# every key an evolution may change, unless the owner's policy narrows it (o.evolution.owner)
EVOLVABLE = ("system", "blocks", "tool_rules", "tool_ids", "llm_config")


class NotAllowed(InvalidInput):
    """A proposal changes what the owner's policy does not let an evolution change."""

    code = "not_allowed_by_policy"


def proposal_request(
    config: dict[str, Any],
    reflection: dict[str, Any],
    cases: list[dict[str, Any]],
    may_change: Sequence[str] = EVOLVABLE,
    count: int = 1,
) -> ChatRequest:
    shown = {k: v for k, v in reflection.items() if k != "recent_inputs"}
    allowed = ", ".join(k for k in EVOLVABLE if k in may_change)
    return ChatRequest(
        messages=[
            ChatMessage.system(
                f"{PROPOSER_MARKER}\n"
                f"You may change only these keys of the configuration: {allowed} (blocks: label, limit, "
                "description, read_only — never values). You must never change the evaluation "
                "cases, the judge or the gate. Learn from the evolution history: do not repeat a change that was "
                "rolled back (see attempts), and learn from the failed and badly rated traces. "
                f"Propose up to {count} different candidates. Answer with JSON only: "
                '{"candidates": [{"rationale": "<why this change should help>", "changes": {<only the keys you '
                "change>}}, ...]}"
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


def parse_proposal(
    text: str, current: dict[str, Any], may_change: Sequence[str] = EVOLVABLE
) -> tuple[dict[str, Any], str]:
    """The candidate configuration and rationale of a one-candidate answer; raises InvalidInput (NotAllowed for
    a change the owner's policy forbids, EvaluatorTampering for one that touches the evaluator)."""
    return _candidate(_answer(text), current, may_change)


def parse_proposals(
    text: str, current: dict[str, Any], may_change: Sequence[str] = EVOLVABLE, limit: int = 1
) -> tuple[list[tuple[dict[str, Any], str]], list[str]]:
    """(the usable candidates, why the others were skipped) of an answer with up to ``limit`` candidates
    (``{"candidates": [...]}``, or one proposal). One that touches the evaluator refuses the whole answer
    (EvaluatorTampering); one the policy forbids, that changes nothing or repeats another is skipped."""
    answer = _answer(text)
    items = answer.get("candidates", [answer])
    if not isinstance(items, list) or not items:
        raise InvalidInput("the proposal has no candidates")
    found: list[tuple[dict[str, Any], str]] = []
    skipped: list[str] = []
    seen: set[str] = set()
    for item in items[:limit]:
        try:
            config, rationale = _candidate(item, current, may_change)
        except EvaluatorTampering:
            raise
        except InvalidInput as exc:
            skipped.append(exc.message)
            continue
        digest = revisions.config_hash(config)
        if digest in seen:
            skipped.append("a candidate repeats another of the same answer")
            continue
        seen.add(digest)
        found.append((config, rationale))
    if not found:
        error = NotAllowed if all("owner's policy" in why for why in skipped) else InvalidInput
        raise error(f"no usable candidate: {'; '.join(skipped)}")
    return found, skipped


def _answer(text: str) -> dict[str, Any]:
    try:
        return parse_json_object(text)
    except ValueError as exc:
        raise InvalidInput(f"the proposal is not valid JSON of the expected shape: {exc}") from exc


def _candidate(item: Any, current: dict[str, Any], may_change: Sequence[str]) -> tuple[dict[str, Any], str]:
    try:
        proposal = Proposal.model_validate(item)
    except ValidationError as exc:
        raise InvalidInput(f"the proposal is not valid JSON of the expected shape: {exc}") from exc
    touched = EVALUATOR_KEYS & set(proposal.changes)
    if touched:
        raise EvaluatorTampering(f"the candidate tried to change the evaluator ({sorted(touched)}); refused")
    refused = sorted(set(proposal.changes) - set(may_change))
    if refused:
        raise NotAllowed(f"the proposal changes {refused}, which the owner's policy does not let an evolution change")
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
