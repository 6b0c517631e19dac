"""The evolution's decisions, as functions of its record and figures: no database, no LLM, no clock.

What limits an evolution may run under, which action is due at each status, whether it must stop,
what the gate says of the shadow figures, and what the canary's live figures call for (promote,
roll back with the reasons, or bake another round). The phases (:mod:`o.evolution.phases`) gather
the inputs and carry out the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from statistics import NormalDist
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from o.config import EvolutionSettings
from o.errors import InvalidInput
from o.evolution import evaluator, stats
from o.evolution.metrics import VersionStats
from o.evolution.rollout import validate_routing
from o.store.evolution import Evolution, EvolutionStatus

Action = Literal["reflect", "propose", "shadow", "gate", "canary", "evaluate", "await", "rollback"]

# status → the action that moves it on
NEXT_ACTION: dict[EvolutionStatus, Action] = {
    EvolutionStatus.STARTED: "reflect",
    EvolutionStatus.REFLECTED: "propose",
    EvolutionStatus.PROPOSED: "shadow",
    EvolutionStatus.SHADOWED: "gate",
    EvolutionStatus.GATED: "canary",
    EvolutionStatus.CANARY: "evaluate",
}
# "await": look again whether the owner approved what waits for approval (o.evolution.approval)
ACTIONS: tuple[Action, ...] = ("reflect", "propose", "shadow", "gate", "canary", "evaluate", "await", "rollback")


class Budget(BaseModel):
    """One evolution's limits: the policy's defaults with a start request's overrides on top."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(ge=1)
    max_seconds: float = Field(gt=0)
    canary_weight: float = Field(gt=0, le=1)
    # the weights the canary steps up to after ``canary_weight``, each only while the evidence holds
    canary_steps: list[float] = Field(default_factory=list)
    bake_seconds: int = Field(ge=0)
    max_bake_rounds: int = Field(ge=1)
    replay_sample: int = Field(ge=0, le=100)
    candidates_per_pass: int = Field(default=1, ge=1, le=5)
    # the owner's dollar limit for this pass (per pass, and what was left of the day's); None: no dollar limit
    max_usd: float | None = Field(default=None, gt=0)


def merge_budget(policy: EvolutionSettings, overrides: Mapping[str, Any] | None) -> Budget:
    """The policy's limits with the overrides that are set; raises InvalidInput for limits that cannot hold."""
    merged = Budget(
        **{
            "max_tokens": policy.max_tokens,
            "max_seconds": policy.max_seconds,
            "canary_weight": policy.canary_weight,
            "canary_steps": list(policy.canary_steps),
            "bake_seconds": policy.bake_seconds,
            "max_bake_rounds": policy.max_bake_rounds,
            "replay_sample": policy.replay_sample,
            "candidates_per_pass": policy.candidates_per_pass,
            **{k: v for k, v in (overrides or {}).items() if v is not None},
        }
    )
    steps = merged.canary_steps
    validate_routing("1", {"2": merged.canary_weight})
    if any(not 0 < w < 1 for w in steps) or any(b <= a for a, b in pairwise(steps)):
        raise InvalidInput(f"canary steps must rise step by step between 0 and 1 (promotion is 100%): {steps}")
    weights = canary_weights(merged.model_dump())
    if merged.bake_seconds * merged.max_bake_rounds * len(weights) >= merged.max_seconds:
        raise InvalidInput(
            f"the canary could bake {merged.bake_seconds} s x {merged.max_bake_rounds} rounds x {len(weights)} "
            f"steps, which does not fit the evolution's time budget of {merged.max_seconds} s"
        )
    return merged


def canary_weights(budget: Mapping[str, Any]) -> list[float]:
    """The canary's weights, step by step: its first weight, then the later steps above it."""
    first = float(budget["canary_weight"])
    return [first, *(float(w) for w in budget.get("canary_steps") or [] if w > first)]


def due_action(evo: Evolution) -> Action:
    """The action that moves an undecided evolution on."""
    return NEXT_ACTION[evo.status]


def bake_seconds(evo: Evolution) -> int:
    """How long to wait before the next action: the bake while a canary takes traffic, else none."""
    return int(evo.budget["bake_seconds"]) if evo.status == EvolutionStatus.CANARY else 0


def token_limit_reached(evo: Evolution, used: int, usd_used: float = 0.0) -> str | None:
    """Why ``used`` tokens (costing ``usd_used`` at list price) end the evolution, or None while they fit."""
    if used > evo.budget["max_tokens"]:
        return f"token budget of {evo.budget['max_tokens']} exhausted ({used} used)"
    max_usd = evo.budget.get("max_usd")
    if max_usd is not None and usd_used > max_usd:
        return f"dollar budget of ${max_usd:.6f} exhausted (${usd_used:.6f} used at list price)"
    return None


def usd_used(evo: Evolution) -> float:
    """The list-price dollars the evolution has spent so far."""
    return float(evo.figures.get("usd_used") or 0.0)


def limit_reached(evo: Evolution, now: datetime) -> str | None:
    """Why the evolution must stop before its next step (stop request, time, tokens), or None."""
    if evo.stop_requested:
        return "stopped on request"
    if now > evo.deadline:
        return f"time budget of {evo.budget['max_seconds']} s exhausted"
    return token_limit_reached(evo, evo.tokens_used, usd_used(evo))


def shadow_deadline(evo: Evolution, now: datetime, monotonic_now: float, step_deadline: float | None) -> float:
    """The time.monotonic() by which the shadow test must end: the evolution's deadline, or the step's if sooner."""
    deadline = monotonic_now + max(0.0, (evo.deadline - now).total_seconds())
    return deadline if step_deadline is None else min(deadline, step_deadline)


def gate_verdict(gate: evaluator.Gate, shadow_figures: Mapping[str, Any]) -> evaluator.GateResult:
    """The gate's verdict on the shadow test recorded in the evolution's figures."""
    cases = shadow_figures["cases"]
    current = evaluator.Summary([evaluator.CaseResult(**c) for c in cases["current"]])
    candidate = evaluator.Summary([evaluator.CaseResult(**c) for c in cases["candidate"]])
    return evaluator.gate(gate, current, candidate)


@dataclass(frozen=True)
class CanaryVerdict:
    action: Literal["promote", "rollback", "bake", "step"]
    reason: str


# With no baseline to compare with, a candidate is judged against a neutral score (as many pleased as not).
NEUTRAL_SCORE = 0.5
# A candidate whose feedback leans worse by this many standard errors, short of significance, bakes longer
# (while rounds remain) so that the evidence can settle: a sequential test rather than a guess on a few scores.
LEAN_Z = 0.5


def _adjusted(mean: float, n: int) -> tuple[float, int]:
    """A mean score with one pleased and one displeased user added (Agresti-Caffo): a handful of identical
    scores then no longer looks certain, which keeps the z-tests honest at small counts."""
    return (mean * n + 1) / (n + 2), n + 2


def feedback_z(base_mean: float, base_n: int, cand_mean: float, cand_n: int) -> float:
    """How many standard errors the candidate's mean score lies below the base's (Agresti-Caffo two-sample z).

    Scores lie in [0, 1]; p(1-p) bounds the variance of any [0, 1] score with mean p, so the test fits
    thumbs up/down and is conservative for graded scores.
    """
    (pb, nb), (pc, nc) = _adjusted(base_mean, base_n), _adjusted(cand_mean, cand_n)
    return (pb - pc) / math.sqrt(pb * (1 - pb) / nb + pc * (1 - pc) / nc)


def _feedback_gap(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> tuple[float, float] | None:
    """(how far the candidate's mean score lies below its baseline, that gap in standard errors), or None
    without candidate feedback. The baseline is the base's mean when it has ``min_feedback`` scores, else neutral."""
    if cand.feedback is None or cand.feedback_count <= 0:
        return None
    if base.feedback is not None and base.feedback_count >= rules.min_feedback:
        z = feedback_z(base.feedback, base.feedback_count, cand.feedback, cand.feedback_count)
        return base.feedback - cand.feedback, z
    pc, nc = _adjusted(cand.feedback, cand.feedback_count)
    return NEUTRAL_SCORE - cand.feedback, (NEUTRAL_SCORE - pc) / math.sqrt(NEUTRAL_SCORE * (1 - NEUTRAL_SCORE) / nc)


def feedback_problem(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> str | None:
    """Why the candidate's feedback says it is worse, or None: worse by more than the rules allow, and
    significantly so (one-sided, at ``rules.feedback_confidence``), so that noise alone rarely rolls back."""
    gap = _feedback_gap(rules, base, cand)
    if gap is None or -gap[0] >= rules.min_feedback_delta:
        return None
    if gap[1] < NormalDist().inv_cdf(rules.feedback_confidence):
        return None
    assert cand.feedback is not None
    if base.feedback is not None and base.feedback_count >= rules.min_feedback:
        return (
            f"canary feedback {cand.feedback:.2f} vs {base.feedback:.2f} "
            f"({cand.feedback_count} vs {base.feedback_count} scores)"
        )
    return f"canary feedback {cand.feedback:.2f} over {cand.feedback_count} scores, below neutral"


def feedback_leans_worse(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> bool:
    """The candidate's feedback is lower than its baseline by LEAN_Z standard errors: not proof, worth watching."""
    gap = _feedback_gap(rules, base, cand)
    return gap is not None and gap[1] >= LEAN_Z


@dataclass(frozen=True)
class LiveCheck:
    """One live metric of the canary against its baseline over the same window."""

    name: str
    failed: bool
    reason: str
    evidence: dict[str, Any]


def _live_check(
    name: str,
    worse_by_tolerance: bool,
    reason: str,
    rules: evaluator.CanaryGate,
    cand: list[float] | None,
    base: list[float] | None,
    alpha: float | None = None,
) -> LiveCheck:
    """Failed when the canary is worse than the tolerance allows and, where per-turn values are known, the
    one-sided Mann-Whitney test says so beyond chance; only aggregates known: the tolerance decides."""
    if cand is None or base is None:
        return LiveCheck(
            name, worse_by_tolerance, reason, {"test": "tolerance on aggregates", "beyond": worse_by_tolerance}
        )
    alpha = rules.alpha if alpha is None else alpha
    rank = stats.mann_whitney(cand, base)
    significant = rank.p_value <= alpha
    evidence = {**rank.as_dict(), "alpha": alpha, "beyond_tolerance": worse_by_tolerance}
    return LiveCheck(name, worse_by_tolerance and significant, f"{reason} (p = {rank.p_value:.4f})", evidence)


def live_checks(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> list[LiveCheck]:
    """Errors, latency, cost and tool failures of the canary against its baseline, each a test."""
    bs, cs = base.samples, cand.samples
    both = bs is not None and cs is not None

    def values(attr: str) -> tuple[list[float] | None, list[float] | None]:
        return (getattr(cs, attr), getattr(bs, attr)) if both else (None, None)

    return [
        _live_check(
            "errors",
            cand.error_rate > base.error_rate + rules.max_error_rate_increase,
            f"canary error rate {cand.error_rate:.1%} vs {base.error_rate:.1%}",
            rules,
            *values("errors"),
        ),
        _live_check(
            "latency",
            evaluator.slower(base.latency_ms, cand.latency_ms, rules.max_latency_ratio, rules.min_latency_delta_ms),
            f"canary latency {cand.latency_ms:.0f} ms vs {base.latency_ms:.0f} ms",
            rules,
            *values("latency_ms"),
        ),
        _live_check(
            "cost",
            base.tokens > 0 and cand.tokens / base.tokens > rules.max_cost_ratio,
            f"canary cost {cand.tokens:.0f} vs {base.tokens:.0f} tokens per turn",
            rules,
            *values("tokens"),
        ),
        _live_check(
            "tool_failures",
            cand.tool_failure_rate > base.tool_failure_rate + rules.max_tool_failure_increase,
            f"canary tool failures {cand.tool_failure_rate:.2f} vs {base.tool_failure_rate:.2f} per turn",
            rules,
            *values("tool_failures"),
        ),
    ]


def judge_check(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> LiveCheck | None:
    """The judge's scores of sampled live replies, canary against baseline: failed when the canary's mean is
    lower by more than ``max_judge_score_drop`` and the one-sided Mann-Whitney test (baseline above canary)
    says so at ``judge_alpha``; None while either side has fewer than ``min_judged`` scores."""
    b, c = base.judge_scores, cand.judge_scores
    if len(b) < rules.min_judged or len(c) < rules.min_judged:
        return None
    base_mean, cand_mean = sum(b) / len(b), sum(c) / len(c)
    worse = base_mean - cand_mean > rules.max_judge_score_drop
    reason = f"canary judge score {cand_mean:.2f} vs {base_mean:.2f} ({len(c)} vs {len(b)} sampled replies)"
    # the rank test asks whether its first sample runs larger: the baseline's scores above the canary's
    return _live_check("judge", worse, reason, rules, b, c, rules.judge_alpha)


def canary_problems(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> list[str]:
    """Where the candidate's live figures are worse than the base's by more than the rules allow."""
    problems = [check.reason for check in live_checks(rules, base, cand) if check.failed]
    judged = judge_check(rules, base, cand)
    if judged is not None and judged.failed:
        problems.append(judged.reason)
    feedback = feedback_problem(rules, base, cand)
    if feedback is not None:
        problems.insert(1, feedback)
    return problems


def canary_verdict(
    rules: evaluator.CanaryGate,
    base: VersionStats,
    cand: VersionStats,
    *,
    round_no: int,
    max_rounds: int,
    last_step: bool = True,
) -> CanaryVerdict:
    """Promote, step up, roll back, or bake another round, from the canary's figures over the current step's
    window after round ``round_no`` (from 0) of at most ``max_rounds`` per step.

    Too little traffic extends the step; a step that ends without enough ends the canary inconclusive, which
    rolls back (a canary is never promoted unproven). A failed check rolls back at once. Evidence that holds
    steps the weight up, and promotes after the last step."""
    if cand.turns < rules.min_turns:
        if round_no + 1 < max_rounds:
            return CanaryVerdict(
                "bake", f"only {cand.turns} canary turns so far (need {rules.min_turns}); baking longer"
            )
        return CanaryVerdict("rollback", f"canary inconclusive: {cand.turns} turns, {rules.min_turns} needed")
    problems = canary_problems(rules, base, cand)
    if problems:
        return CanaryVerdict("rollback", "canary worse than the current revision: " + "; ".join(problems))
    if round_no + 1 < max_rounds and feedback_leans_worse(rules, base, cand):
        return CanaryVerdict("bake", f"canary feedback leans worse ({cand.feedback_count} scores); baking for more")
    feedback = cand.feedback if cand.feedback is not None else "none"
    healthy = f"canary healthy over {cand.turns} turns (errors {cand.error_rate:.1%}, feedback {feedback})"
    return CanaryVerdict("promote" if last_step else "step", healthy)
