"""The evolution's decisions, as functions of its record and figures: no database, no LLM, no clock.

What limits an evolution may run under, which action is due at each status, whether it must stop,
what the gate says of the shadow figures, and what the canary's live figures call for (promote,
roll back with the reasons, or bake another round). The phases (:mod:`o.evolution.phases`) gather
the inputs and carry out the verdicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from o.config import EvolutionSettings
from o.errors import InvalidInput
from o.evolution import evaluator
from o.evolution.metrics import VersionStats
from o.evolution.rollout import validate_routing
from o.store.evolution import Evolution, EvolutionStatus

Action = Literal["reflect", "propose", "shadow", "gate", "canary", "evaluate", "rollback"]

# status → the action that moves it on
NEXT_ACTION: dict[EvolutionStatus, Action] = {
    EvolutionStatus.STARTED: "reflect",
    EvolutionStatus.REFLECTED: "propose",
    EvolutionStatus.PROPOSED: "shadow",
    EvolutionStatus.SHADOWED: "gate",
    EvolutionStatus.GATED: "canary",
    EvolutionStatus.CANARY: "evaluate",
}
ACTIONS: tuple[Action, ...] = ("reflect", "propose", "shadow", "gate", "canary", "evaluate", "rollback")


class Budget(BaseModel):
    """One evolution's limits: the policy's defaults with a start request's overrides on top."""

    model_config = ConfigDict(extra="forbid")

    max_tokens: int = Field(ge=1)
    max_seconds: float = Field(gt=0)
    canary_weight: float = Field(gt=0, le=1)
    bake_seconds: int = Field(ge=0)
    max_bake_rounds: int = Field(ge=1)
    replay_sample: int = Field(ge=0, le=100)


def merge_budget(policy: EvolutionSettings, overrides: Mapping[str, Any] | None) -> Budget:
    """The policy's limits with the overrides that are set; raises InvalidInput for limits that cannot hold."""
    merged = Budget(
        **{
            "max_tokens": policy.max_tokens,
            "max_seconds": policy.max_seconds,
            "canary_weight": policy.canary_weight,
            "bake_seconds": policy.bake_seconds,
            "max_bake_rounds": policy.max_bake_rounds,
            "replay_sample": policy.replay_sample,
            **{k: v for k, v in (overrides or {}).items() if v is not None},
        }
    )
    validate_routing("1", {"2": merged.canary_weight})
    if merged.bake_seconds * merged.max_bake_rounds >= merged.max_seconds:
        raise InvalidInput(
            f"the canary could bake {merged.bake_seconds} s x {merged.max_bake_rounds} rounds, which does not fit "
            f"the evolution's time budget of {merged.max_seconds} s"
        )
    return merged


def due_action(evo: Evolution) -> Action:
    """The action that moves an undecided evolution on."""
    return NEXT_ACTION[evo.status]


def bake_seconds(evo: Evolution) -> int:
    """How long to wait before the next action: the bake while a canary takes traffic, else none."""
    return int(evo.budget["bake_seconds"]) if evo.status == EvolutionStatus.CANARY else 0


def token_limit_reached(evo: Evolution, used: int) -> str | None:
    """Why ``used`` tokens end the evolution, or None while they fit its budget."""
    if used > evo.budget["max_tokens"]:
        return f"token budget of {evo.budget['max_tokens']} exhausted ({used} used)"
    return None


def limit_reached(evo: Evolution, now: datetime) -> str | None:
    """Why the evolution must stop before its next step (stop request, time, tokens), or None."""
    if evo.stop_requested:
        return "stopped on request"
    if now > evo.deadline:
        return f"time budget of {evo.budget['max_seconds']} s exhausted"
    return token_limit_reached(evo, evo.tokens_used)


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
    action: Literal["promote", "rollback", "bake"]
    reason: str


def canary_problems(rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats) -> list[str]:
    """Where the candidate's live figures are worse than the base's by more than the rules allow."""
    problems = []
    if cand.error_rate > base.error_rate + rules.max_error_rate_increase:
        problems.append(f"canary error rate {cand.error_rate:.1%} vs {base.error_rate:.1%}")
    if (
        cand.feedback is not None
        and base.feedback is not None
        and cand.feedback - base.feedback < rules.min_feedback_delta
    ):
        problems.append(f"canary feedback {cand.feedback:.2f} vs {base.feedback:.2f}")
    if evaluator.slower(base.latency_ms, cand.latency_ms, rules.max_latency_ratio, rules.min_latency_delta_ms):
        problems.append(f"canary latency {cand.latency_ms:.0f} ms vs {base.latency_ms:.0f} ms")
    return problems


def canary_verdict(
    rules: evaluator.CanaryGate, base: VersionStats, cand: VersionStats, *, round_no: int, max_rounds: int
) -> CanaryVerdict:
    """Promote, roll back, or bake another round, from the canary's figures after round ``round_no`` (from 0)."""
    if cand.turns < rules.min_turns:
        if round_no + 1 < max_rounds:
            return CanaryVerdict(
                "bake", f"only {cand.turns} canary turns so far (need {rules.min_turns}); baking longer"
            )
        if rules.on_inconclusive == "rollback":
            return CanaryVerdict("rollback", f"canary inconclusive: {cand.turns} turns, {rules.min_turns} needed")
        return CanaryVerdict("promote", f"canary inconclusive ({cand.turns} turns); promoted on the shadow evidence")
    problems = canary_problems(rules, base, cand)
    if problems:
        return CanaryVerdict("rollback", "canary worse than the current revision: " + "; ".join(problems))
    feedback = cand.feedback if cand.feedback is not None else "none"
    return CanaryVerdict(
        "promote", f"canary healthy over {cand.turns} turns (errors {cand.error_rate:.1%}, feedback {feedback})"
    )
