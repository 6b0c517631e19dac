"""The evaluator: evaluation cases, deterministic checks, the LLM judge, the gate thresholds.

It is the one thing a candidate may never change. Its canonical hash is taken when an evolution
starts and compared before the gate and before promotion; any difference ends the evolution in
rollback. The suite is validated here with Pydantic because it arrives from the API.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from o.errors import Conflict, NotFound
from o.evolution import stats
from o.llm.client import LLMClient, LLMError
from o.llm.types import ChatMessage, ChatRequest, Usage
from o.store import evolution as evolution_store
from o.store.db import Conn
from o.tools.evaluator_lock import EVALUATOR_NAMES, JUDGE_MARKER

# Keys that name the evaluator: a proposal that touches any of them is refused outright (and so is a memory
# edit of a block so named: o.tools.evaluator_lock).
EVALUATOR_KEYS = EVALUATOR_NAMES


class Checks(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contains: list[str] = Field(default_factory=list, description="each must appear (case-insensitive)")
    not_contains: list[str] = Field(default_factory=list, description="none may appear (case-insensitive)")
    max_chars: int | None = Field(default=None, ge=1)
    regex: str | None = None

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from exc
        return value


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    input: str = Field(min_length=1, max_length=20_000)
    checks: Checks = Field(default_factory=Checks)
    # held-out cases are never shown to the proposer nor used by the gate: they measure generalisation
    held_out: bool = False


class CanaryGate(BaseModel):
    """How a canary is judged on live traffic, step by step (see :func:`o.evolution.policy.canary_verdict`)."""

    model_config = ConfigDict(extra="forbid")

    # the least canary turns in a step's window before it can be judged (the step extends until then, and
    # ends inconclusive, rolled back, if they never come)
    min_turns: int = Field(default=10, ge=0)
    # A live check fails when the canary is worse by more than its tolerance AND the one-sided Mann-Whitney
    # test of canary against baseline over the same window says so at ``alpha`` (Kayenta's rule).
    alpha: float = Field(default=0.05, gt=0, le=1)
    max_error_rate_increase: float = Field(default=0.05, ge=0, le=1)
    min_feedback_delta: float = Field(default=-0.1, ge=-1, le=1)
    # Feedback is noisy: the candidate's mean score must be below the base's (or, when the base has fewer
    # than ``min_feedback`` scores, below a neutral 0.5) by more than ``min_feedback_delta`` AND with this
    # one-sided confidence before it rolls a canary back (o.evolution.policy.feedback_problem).
    feedback_confidence: float = Field(default=0.99, ge=0.5, lt=1)
    min_feedback: int = Field(default=5, ge=1)
    max_latency_ratio: float = Field(default=2.0, gt=0)
    # Below this absolute slowdown a ratio is noise (a 3 ms reply against a 6 ms one), not a regression.
    min_latency_delta_ms: float = Field(default=250.0, ge=0)
    max_cost_ratio: float = Field(default=2.0, gt=0)
    max_tool_failure_increase: float = Field(default=0.1, ge=0, description="failed tool calls per turn")
    # The judge of the shadow test also scores a share of live replies, the canary's and the baseline's over the
    # same window (o.evolution.live_judge): a reply is sampled by a stable hash of the evolution and run ids, so a
    # rerun picks the same replies. The scores are model output, so noisy: the check fails only when the canary's
    # mean is lower by more than ``max_judge_score_drop`` AND the one-sided Mann-Whitney test says so at
    # ``judge_alpha``, with at least ``min_judged`` scores a side. The judge's tokens count against the evolution's
    # budget; it stops sampling (never rolls back) when the budget could not pay for another call.
    judge_sample: float = Field(default=0.1, ge=0, le=1, description="share of live replies the judge scores")
    max_judge_score_drop: float = Field(default=0.1, ge=0, le=1)
    # stricter than ``alpha``: the judge is model output and is looked at again every round
    judge_alpha: float = Field(default=0.01, gt=0, le=1)
    min_judged: int = Field(default=10, ge=1, description="judge scores needed on each side before they count")
    judge_max_per_round: int = Field(default=50, ge=0, description="live replies judged per evaluation round")
    # a canary that never saw enough traffic ends inconclusive and rolls back: it is never promoted unproven
    on_inconclusive: Literal["rollback"] = "rollback"


class Gate(BaseModel):
    """When a shadow-tested candidate may go on to a canary (see :mod:`o.evolution.stats`)."""

    model_config = ConfigDict(extra="forbid")

    alpha: float = Field(
        default=0.05,
        gt=0,
        le=1,
        description="the false-promotion rate accepted: a no-better candidate passes at most this often",
    )
    min_cases: int = Field(
        default=6,
        ge=1,
        description="paired cases the gate needs before it can decide; fewer refuse the candidate as unproven",
    )
    samples_per_case: int = Field(
        default=1, ge=1, le=10, description="replays of each case per revision (for a stochastic model; averaged)"
    )
    min_improvement: float = Field(
        default=0.0, ge=-1, le=1, description="the least mean score difference (candidate minus current) to accept"
    )
    max_regressions: int | None = Field(
        default=None, ge=0, description="an optional hard cap on cases where the candidate scores lower"
    )
    # The guards are tests too (:func:`o.evolution.stats.difference_guard`, :func:`~o.evolution.stats.ratio_guard`):
    # a guard refuses when the cases beyond its limit are more than chance would give, at ``guard_alpha``.
    max_error_rate: float = Field(
        default=0.0, ge=0, le=1, description="the tolerated increase of a case's error rate over the current's"
    )
    max_latency_ratio: float = Field(default=2.0, gt=0)
    min_latency_delta_ms: float = Field(default=250.0, ge=0)
    max_cost_ratio: float = Field(default=2.0, gt=0)
    guard_alpha: float = Field(
        default=0.05, gt=0, le=1, description="how sure a guard must be that the candidate is worse to refuse it"
    )
    judge_weight: float = Field(default=0.3, ge=0, le=1)
    canary: CanaryGate = Field(default_factory=CanaryGate)


class Judge(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    enabled: bool = True
    instructions: str = "Score 1.0 for a correct, helpful, concise reply; 0.0 for a wrong or unhelpful one."
    # the judge's own model; None means the model of the revision the evolution started from
    llm_config: dict[str, Any] | None = None


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[EvalCase] = Field(default_factory=list, max_length=500)
    gate: Gate = Field(default_factory=Gate)
    judge: Judge = Field(default_factory=Judge)

    def canonical_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def gate_cases(self) -> list[EvalCase]:
        return [c for c in self.cases if not c.held_out]

    def held_out_cases(self) -> list[EvalCase]:
        return [c for c in self.cases if c.held_out]


def slower(current_ms: float, candidate_ms: float, max_ratio: float, min_delta_ms: float) -> bool:
    """Is the candidate slower by more than the ratio allows, and by enough milliseconds to matter?"""
    return current_ms > 0 and candidate_ms / current_ms > max_ratio and candidate_ms - current_ms >= min_delta_ms


def load_suite(conn: Conn, agent_id: str) -> Suite:
    row = evolution_store.get_suite(conn, agent_id)
    if row is None:
        return Suite()
    return Suite.model_validate({"cases": row["cases"], "gate": row["gate"], "judge": row["judge"]})


def save_suite(conn: Conn, organization_id: str, agent_id: str, suite: Suite) -> dict[str, Any]:
    data = suite.model_dump(mode="json")
    return evolution_store.put_suite(conn, organization_id, agent_id, data, suite.canonical_hash())


# the share of cases grown from real conversations that is held out (never shown to the proposer, never gating)
HELD_OUT_SHARE = 0.25


def held_out_by_hash(agent_id: str, text: str) -> bool:
    """A stable split: the same input of the same agent always lands on the same side."""
    digest = hashlib.sha256(f"{agent_id}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < HELD_OUT_SHARE


def add_case_from_run(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    run_id: str,
    name: str | None,
    checks: Checks,
    held_out: bool | None,
) -> Suite:
    """Add a case whose input is the run's first user message (a real conversation); the suite saved."""
    text = evolution_store.run_input(conn, agent_id, run_id)
    if text is None:
        raise NotFound(f"run {run_id} not found for agent {agent_id}, or it has no user message")
    suite = load_suite(conn, agent_id)
    if any(c.input == text for c in suite.cases):
        raise Conflict(f"the suite already has a case with the input of run {run_id}")
    split = held_out_by_hash(agent_id, text) if held_out is None else held_out
    case = EvalCase(name=name or f"run {run_id}", input=text[:20_000], checks=checks, held_out=split)
    grown = suite.model_copy(update={"cases": [*suite.cases, case]})
    save_suite(conn, organization_id, agent_id, Suite.model_validate(grown.model_dump()))
    return grown


def current_hash(conn: Conn, agent_id: str) -> str:
    """The hash of the suite as stored now, recomputed from its content (the stored hash is not trusted)."""
    return load_suite(conn, agent_id).canonical_hash()


# --- scoring -----------------------------------------------------------------------------------------------


def check_score(checks: Checks, reply: str) -> float | None:
    """Fraction of the deterministic checks the reply passes; None when the case has none."""
    results: list[bool] = []
    low = reply.lower()
    results += [needle.lower() in low for needle in checks.contains]
    results += [needle.lower() not in low for needle in checks.not_contains]
    if checks.max_chars is not None:
        results.append(len(reply) <= checks.max_chars)
    if checks.regex is not None:
        results.append(re.search(checks.regex, reply) is not None)
    return sum(results) / len(results) if results else None


@dataclass
class Verdict:
    score: float | None
    tokens: int = 0
    error: str | None = None
    usage: Usage = field(default_factory=Usage)  # what the call cost, priced by the caller at the judge's model


def judge_reply(client: LLMClient, judge: Judge, user_input: str, reply: str) -> Verdict:
    """Ask the judge model for a score in [0, 1] as JSON; a malformed answer counts as no verdict."""
    request = ChatRequest(
        messages=[
            ChatMessage.system(
                f"{JUDGE_MARKER}\n{judge.instructions}\n"
                'Answer with JSON only: {"score": <number between 0 and 1>, "reason": "<short>"}'
            ),
            ChatMessage.user(json.dumps({"user_input": user_input, "assistant_reply": reply})),
        ],
        temperature=0.0,
        max_tokens=200,
    )
    try:
        response = client.chat(request)
    except LLMError as exc:
        return Verdict(None, 0, f"judge failed: {exc.message}")
    usage = response.usage
    try:
        data = parse_json_object(response.content or "")
        score = float(data["score"])
    except (ValueError, KeyError, TypeError):
        return Verdict(None, usage.total_tokens, "judge answered without a valid score", usage)
    if not 0.0 <= score <= 1.0:
        return Verdict(None, usage.total_tokens, f"judge score {score} outside 0..1", usage)
    return Verdict(score, usage.total_tokens, None, usage)


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a model's answer, tolerating a code fence or prose around it."""
    text = text.strip()
    fence = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
    if fence:
        text = fence.group(1).strip()
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError("no JSON object in the answer")
    value = json.loads(text[start : end + 1])
    if not isinstance(value, dict):
        raise ValueError("the answer is not a JSON object")
    return value


def combine(checks: float | None, judged: float | None, judge_weight: float, ok: bool) -> float:
    """One score per replay: checks and judge weighted; an errored replay scores 0."""
    if not ok:
        return 0.0
    parts = [(checks, 1.0 - judge_weight), (judged, judge_weight)]
    present = [(v, w) for v, w in parts if v is not None and w > 0]
    if not present:
        return 1.0
    return sum(v * w for v, w in present) / sum(w for _, w in present)


@dataclass
class CaseResult:
    name: str
    input: str
    reply: str | None
    ok: bool
    score: float
    checks: float | None
    judge: float | None
    latency_ms: float
    tokens: int
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            k: getattr(self, k)
            for k in ("name", "input", "reply", "ok", "score", "checks", "judge", "latency_ms", "tokens", "error")
        }


@dataclass
class Summary:
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def error_rate(self) -> float:
        return sum(not c.ok for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def latency_ms(self) -> float:
        return sum(c.latency_ms for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def tokens(self) -> float:
        return sum(c.tokens for c in self.cases) / len(self.cases) if self.cases else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "error_rate": round(self.error_rate, 4),
            "latency_ms": round(self.latency_ms, 2),
            "tokens": round(self.tokens, 1),
            "n": len(self.cases),
        }


@dataclass
class GateResult:
    passed: bool
    reasons: list[str]
    figures: dict[str, Any]


def gate(gate_config: Gate, current: Summary, candidate: Summary) -> GateResult:
    """Compare the candidate with the current revision on the same replays (paired by case)."""
    cur_scores, cand_scores, names = per_case_scores(current, candidate)
    evidence = stats.paired(cur_scores, cand_scores)
    regressions = [name for name, a, b in zip(names, cur_scores, cand_scores, strict=True) if b < a - stats.TIE]
    reasons = _evidence_reasons(gate_config, evidence)
    if gate_config.max_regressions is not None and len(regressions) > gate_config.max_regressions:
        reasons.append(f"regresses {len(regressions)} case(s): {regressions[:5]}")
    guards = guard_evidence(gate_config, current, candidate)
    reasons += [_GUARD_REASONS[g.name](g) for g in guards if g.failed]
    figures = {
        "current": current.figures(),
        "candidate": candidate.figures(),
        "delta": round(candidate.score - current.score, 4),
        "regressions": regressions,
        "evidence": {**evidence.as_dict(), "alpha": gate_config.alpha, "min_cases": gate_config.min_cases},
        "guards": {g.name: g.as_dict() for g in guards},
    }
    return GateResult(not reasons, reasons, figures)


def per_case_scores(
    current: Summary, candidate: Summary, value: Callable[[CaseResult], float] = lambda c: c.score
) -> tuple[list[float], list[float], list[str]]:
    """Each case's mean ``value`` (its score by default) on both revisions (a case replayed several times
    counts once)."""
    cur: dict[str, list[float]] = {}
    cand: dict[str, list[float]] = {}
    for a, b in zip(current.cases, candidate.cases, strict=True):
        cur.setdefault(a.name, []).append(value(a))
        cand.setdefault(b.name, []).append(value(b))
    if cur.keys() != cand.keys():
        raise ValueError("the two revisions were not replayed on the same cases")
    names = list(cur)
    return [sum(cur[n]) / len(cur[n]) for n in names], [sum(cand[n]) / len(cand[n]) for n in names], names


def _evidence_reasons(gate_config: Gate, evidence: stats.PairedEvidence) -> list[str]:
    if evidence.cases < gate_config.min_cases:
        return [f"only {evidence.cases} paired case(s); the gate needs {gate_config.min_cases} to decide"]
    reasons = []
    if evidence.p_value > gate_config.alpha:
        reasons.append(
            f"not better beyond chance: {evidence.wins} case(s) better, {evidence.losses} worse "
            f"(p = {evidence.p_value:.3f} > {gate_config.alpha})"
        )
    if evidence.mean_delta < gate_config.min_improvement:
        reasons.append(
            f"improvement {evidence.mean_delta:+.3f} is below the required {gate_config.min_improvement:+.3f}"
        )
    return reasons


def guard_evidence(gate_config: Gate, current: Summary, candidate: Summary) -> list[stats.GuardEvidence]:
    """The error-rate, latency and cost guards on the paired cases, each as a test with its interval."""
    alpha = gate_config.guard_alpha
    errors = per_case_scores(current, candidate, lambda c: 0.0 if c.ok else 1.0)
    latency = per_case_scores(current, candidate, lambda c: c.latency_ms)
    tokens = per_case_scores(current, candidate, lambda c: float(c.tokens))
    return [
        stats.difference_guard("error_rate", errors[0], errors[1], gate_config.max_error_rate, alpha),
        stats.ratio_guard(
            "latency", latency[0], latency[1], gate_config.max_latency_ratio, alpha, gate_config.min_latency_delta_ms
        ),
        stats.ratio_guard("cost", tokens[0], tokens[1], gate_config.max_cost_ratio, alpha),
    ]


_GUARD_REASONS: dict[str, Callable[[stats.GuardEvidence], str]] = {
    "error_rate": lambda g: (
        f"candidate errors more: {g.above} of {g.cases} case(s) worse (p = {g.p_value:.3f}, "
        f"error rate {g.estimate:+.0%} [{g.ci_low:+.0%}, {g.ci_high:+.0%}])"
    ),
    "latency": lambda g: (
        f"latency above {g.limit}x on {g.above} of {g.cases} case(s) (p = {g.p_value:.3f}, "
        f"ratio {g.estimate:.2f} [{g.ci_low:.2f}, {g.ci_high:.2f}])"
    ),
    "cost": lambda g: (
        f"cost above {g.limit}x on {g.above} of {g.cases} case(s) (p = {g.p_value:.3f}, "
        f"tokens ratio {g.estimate:.2f} [{g.ci_low:.2f}, {g.ci_high:.2f}])"
    ),
}
