"""The evolution's decisions without a database: budgets, limits, what is due, the gate and the canary verdicts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from o.config import EvolutionSettings
from o.errors import InvalidInput
from o.evolution import evaluator, policy
from o.evolution.metrics import LiveSamples, VersionStats
from o.store.evolution import Evolution, EvolutionStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BUDGET = {
    "max_tokens": 1000,
    "max_seconds": 60.0,
    "canary_weight": 0.2,
    "bake_seconds": 5,
    "max_bake_rounds": 3,
    "replay_sample": 2,
}


def _evolution(**changes: Any) -> Evolution:
    evo = Evolution(
        id="evolution-1",
        organization_id="org-1",
        agent_id="agent-1",
        status=EvolutionStatus.STARTED,
        trigger="test",
        base_revision=1,
        candidate_revision=None,
        rationale=None,
        diff=None,
        reflection=None,
        figures={},
        evaluator_hash="h",
        budget=dict(BUDGET),
        tokens_used=0,
        canary=None,
        canary_slot=None,
        decision=None,
        reason=None,
        execution_arn=None,
        stop_requested=False,
        deadline=NOW + timedelta(seconds=60),
        created_at=NOW,
        updated_at=NOW,
        completed_at=None,
    )
    return replace(evo, **changes)


def test_budget_is_the_policy_with_the_overrides_that_are_set() -> None:
    settings = EvolutionSettings(max_tokens=500, max_seconds=100.0, bake_seconds=10, max_bake_rounds=2)
    budget = policy.merge_budget(settings, {"max_tokens": 50, "canary_weight": None})
    assert budget.max_tokens == 50 and budget.max_seconds == 100.0
    assert budget.canary_weight == settings.canary_weight
    assert policy.merge_budget(settings, None).max_tokens == 500


def test_budget_refuses_limits_that_cannot_hold() -> None:
    settings = EvolutionSettings(max_seconds=100.0, bake_seconds=10, max_bake_rounds=2)
    with pytest.raises(InvalidInput, match="time budget"):
        policy.merge_budget(settings, {"bake_seconds": 50})
    with pytest.raises(ValidationError):
        policy.merge_budget(settings, {"canary_weight": 1.5})
    with pytest.raises(ValidationError):
        policy.merge_budget(settings, {"surprise": 1})


def test_due_action_and_bake_follow_the_status() -> None:
    assert policy.due_action(_evolution()) == "reflect"
    assert policy.due_action(_evolution(status=EvolutionStatus.GATED)) == "canary"
    assert policy.due_action(_evolution(status=EvolutionStatus.CANARY)) == "evaluate"
    assert policy.bake_seconds(_evolution(status=EvolutionStatus.CANARY)) == 5
    assert policy.bake_seconds(_evolution(status=EvolutionStatus.SHADOWED)) == 0
    assert set(policy.NEXT_ACTION.values()) | {"await", "rollback"} == set(policy.ACTIONS)


def test_limits_stop_request_then_time_then_tokens() -> None:
    assert policy.limit_reached(_evolution(), NOW) is None
    assert policy.limit_reached(_evolution(stop_requested=True), NOW) == "stopped on request"
    late = NOW + timedelta(seconds=61)
    assert policy.limit_reached(_evolution(), late) == "time budget of 60.0 s exhausted"
    assert policy.limit_reached(_evolution(tokens_used=1000), NOW) is None
    assert policy.limit_reached(_evolution(tokens_used=1001), NOW) == "token budget of 1000 exhausted (1001 used)"
    assert policy.token_limit_reached(_evolution(), 2000) == "token budget of 1000 exhausted (2000 used)"


def test_shadow_deadline_is_the_sooner_of_the_evolution_and_the_step() -> None:
    evo = _evolution()
    assert policy.shadow_deadline(evo, NOW, 100.0, None) == 160.0
    assert policy.shadow_deadline(evo, NOW, 100.0, 130.0) == 130.0
    assert policy.shadow_deadline(evo, NOW + timedelta(seconds=90), 100.0, None) == 100.0


def _case(name: str, score: float) -> dict[str, Any]:
    result = evaluator.CaseResult(name, "in", "out", True, score, score, None, 100.0, 50)
    return result.as_dict()


def test_gate_verdict_from_recorded_shadow_figures() -> None:
    gate = evaluator.Gate(min_improvement=0.05)
    names = [f"c{i}" for i in range(6)]
    better = {"cases": {"current": [_case(n, 0.5) for n in names], "candidate": [_case(n, 1.0) for n in names]}}
    verdict = policy.gate_verdict(gate, better)
    assert verdict.passed and verdict.figures["delta"] == 0.5
    assert verdict.figures["evidence"]["p_value"] == round(1 / 64, 6)
    worse = {"cases": {"current": [_case(n, 1.0) for n in names], "candidate": [_case(n, 0.5) for n in names]}}
    refused = policy.gate_verdict(gate, worse)
    assert not refused.passed and any("not better beyond chance" in r for r in refused.reasons)


def _stats(turns: int, *, errors: float = 0.0, latency: float = 100.0, feedback: float | None = None) -> VersionStats:
    return VersionStats(turns, errors, latency, 50.0, feedback, 0 if feedback is None else turns)


RULES = evaluator.CanaryGate(min_turns=3, max_error_rate_increase=0.05, min_feedback_delta=-0.1)


def test_canary_bakes_while_turns_are_few_then_decides_inconclusive() -> None:
    few = _stats(2)
    baking = policy.canary_verdict(RULES, _stats(10), few, round_no=0, max_rounds=3)
    assert baking.action == "bake" and "only 2 canary turns so far (need 3)" in baking.reason
    last = policy.canary_verdict(RULES, _stats(10), few, round_no=2, max_rounds=3)
    assert last == policy.CanaryVerdict("rollback", "canary inconclusive: 2 turns, 3 needed")
    # a quiet canary is never promoted unproven, and no policy can say otherwise
    with pytest.raises(ValueError):
        evaluator.CanaryGate.model_validate({"on_inconclusive": "promote"})


def test_canary_promotes_when_healthy() -> None:
    verdict = policy.canary_verdict(RULES, _stats(10, feedback=0.5), _stats(4, feedback=0.9), round_no=0, max_rounds=1)
    assert verdict == policy.CanaryVerdict("promote", "canary healthy over 4 turns (errors 0.0%, feedback 0.9)")
    no_feedback = policy.canary_verdict(RULES, _stats(10), _stats(4), round_no=0, max_rounds=1)
    assert no_feedback.action == "promote" and "feedback none" in no_feedback.reason


def test_canary_rolls_back_with_every_reason() -> None:
    # feedback is judged for significance: 20 scores each at 0.3 vs 0.8 are well past noise
    bad = _stats(20, errors=0.2, latency=1000.0, feedback=0.3)
    verdict = policy.canary_verdict(RULES, _stats(20, feedback=0.8), bad, round_no=0, max_rounds=1)
    assert verdict.action == "rollback"
    assert verdict.reason.startswith("canary worse than the current revision: ")
    assert "error rate 20.0% vs 0.0%" in verdict.reason
    assert "feedback 0.30 vs 0.80" in verdict.reason
    assert "latency 1000 ms vs 100 ms" in verdict.reason
    # within the allowed drift: no problem
    assert policy.canary_problems(RULES, _stats(10, errors=0.0), _stats(5, errors=0.04)) == []
    assert policy.canary_problems(RULES, _stats(10, feedback=0.8), _stats(5, feedback=0.75)) == []


def _live(
    turns: int, *, errors: int = 0, latency: float = 100.0, tokens: float = 50.0, jitter: int = 0
) -> VersionStats:
    """Figures with per-turn samples: ``errors`` of ``turns`` failed, latencies spread by ``jitter`` ms."""
    lat = [latency + (i % 7) * jitter for i in range(turns)]
    samples = LiveSamples(
        errors=[1.0 if i < errors else 0.0 for i in range(turns)],
        latency_ms=lat,
        tokens=[tokens] * turns,
        tool_failures=[0.0] * turns,
    )
    return VersionStats(turns, errors / turns, sum(lat) / turns, tokens, samples=samples)


def test_canary_steps_up_only_while_evidence_holds() -> None:
    healthy = policy.canary_verdict(RULES, _live(20), _live(6), round_no=0, max_rounds=3, last_step=False)
    assert healthy.action == "step"
    assert policy.canary_verdict(RULES, _live(20), _live(6), round_no=0, max_rounds=3).action == "promote"
    # too little traffic extends the step, then ends it inconclusive (rolled back), whatever step it is
    quiet = policy.canary_verdict(RULES, _live(20), _live(2), round_no=0, max_rounds=2, last_step=False)
    assert quiet.action == "bake"
    ended = policy.canary_verdict(RULES, _live(20), _live(2), round_no=1, max_rounds=2, last_step=False)
    assert ended.action == "rollback" and "inconclusive" in ended.reason


def test_live_checks_need_significance_and_size() -> None:
    # 1 error in 8 turns against none in 40 exceeds the 5-point tolerance, but could be chance (p = 8/48)
    unsure = policy.live_checks(RULES, _live(40), _live(8, errors=1))
    errors = next(c for c in unsure if c.name == "errors")
    assert errors.evidence["beyond_tolerance"] and not errors.failed
    assert errors.evidence["test"].startswith("Mann-Whitney U")
    assert errors.evidence["p_value"] == pytest.approx(8 / 48, abs=1e-6)
    # 8 of 10 failing is not
    sure = policy.canary_verdict(RULES, _live(40), _live(10, errors=8), round_no=0, max_rounds=3, last_step=False)
    assert sure.action == "rollback" and "canary error rate 80.0% vs 0.0% (p = " in sure.reason
    # slower beyond the ratio on every turn: a latency failure; slower by a few ms: never
    slow = policy.live_checks(RULES, _live(30, jitter=5), _live(10, latency=900.0, jitter=5))
    assert next(c for c in slow if c.name == "latency").failed
    costly = policy.live_checks(RULES, _live(30), _live(10, tokens=500.0))
    assert next(c for c in costly if c.name == "cost").failed
    snappy = policy.live_checks(RULES, _live(30, latency=3.0), _live(10, latency=9.0))
    assert not any(c.failed for c in snappy)


def test_budget_steps_must_rise_and_fit_the_time_budget() -> None:
    settings = EvolutionSettings(max_seconds=10_000, bake_seconds=60, max_bake_rounds=3)
    budget = policy.merge_budget(settings, {})
    assert policy.canary_weights(budget.model_dump()) == [0.05, 0.25, 0.5]
    assert policy.canary_weights(policy.merge_budget(settings, {"canary_weight": 0.3}).model_dump()) == [0.3, 0.5]
    for bad in ([0.5, 0.25], [0.2, 1.0]):
        with pytest.raises(InvalidInput, match="rise step by step"):
            policy.merge_budget(settings, {"canary_steps": bad})
    with pytest.raises(InvalidInput, match="3 steps"):
        policy.merge_budget(EvolutionSettings(max_seconds=500, bake_seconds=60, max_bake_rounds=3), {})
