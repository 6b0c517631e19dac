"""The canary gate on feedback: negative feedback rolls a canary back, and noisy feedback rarely fools it.

The stochastic cases draw seeded thumbs up/down whose truth is known (each revision's real approval
rate) and walk the canary's bake rounds exactly as :func:`o.evolution.phases.evaluate` does: the mean
score and count of each revision, as the feedback table reports them, judged by ``canary_verdict``.
"""

from __future__ import annotations

import random

import pytest

from o.evolution import evaluator, policy
from o.evolution.metrics import VersionStats

RULES = evaluator.CanaryGate()
SEEDS = 1000


def _stats(scores: list[float], *, turns: int = 100) -> VersionStats:
    mean = sum(scores) / len(scores) if scores else None
    return VersionStats(turns, 0.0, 100.0, 50.0, mean, len(scores))


def test_negative_feedback_on_the_canary_rolls_it_back() -> None:
    verdict = policy.canary_verdict(RULES, _stats([1.0] * 5), _stats([0.0] * 4), round_no=0, max_rounds=3)
    assert verdict.action == "rollback"
    assert verdict.reason == "canary worse than the current revision: canary feedback 0.00 vs 1.00 (4 vs 5 scores)"
    # the base has no feedback: the candidate is judged against a neutral score
    alone = policy.canary_verdict(RULES, _stats([]), _stats([0.0] * 8), round_no=0, max_rounds=3)
    assert alone.action == "rollback" and "canary feedback 0.00 over 8 scores, below neutral" in alone.reason


def test_positive_or_no_feedback_does_not_roll_back() -> None:
    for cand in ([1.0] * 6, [], [1.0, 1.0, 0.0, 1.0]):
        verdict = policy.canary_verdict(RULES, _stats([1.0, 0.0] * 5), _stats(cand), round_no=0, max_rounds=3)
        assert verdict.action == "promote", (cand, verdict)
    assert policy.feedback_problem(RULES, _stats([]), _stats([1.0] * 10)) is None


def test_a_few_negative_scores_bake_for_more_evidence_instead_of_deciding() -> None:
    # one thumb down after five up is not yet proof, but worth another round
    base, cand = _stats([1.0] * 5), _stats([0.0])
    assert policy.feedback_problem(RULES, base, cand) is None
    assert policy.canary_verdict(RULES, base, cand, round_no=0, max_rounds=3).action == "bake"
    # on the last round the canary is judged on what there is: not proven worse, promoted
    assert policy.canary_verdict(RULES, base, cand, round_no=2, max_rounds=3).action == "promote"


def test_feedback_z_is_the_agresti_caffo_two_sample_statistic() -> None:
    # 16/20 vs 6/20, each with one pleased and one displeased user added: 17/22 vs 7/22
    pb, pc = 17 / 22, 7 / 22
    expected = (pb - pc) / (pb * (1 - pb) / 22 + pc * (1 - pc) / 22) ** 0.5
    assert policy.feedback_z(0.8, 20, 0.3, 20) == pytest.approx(expected)
    assert policy.feedback_z(1.0, 5, 1.0, 5) == 0.0  # identical: no evidence either way


def _canary(seed: int, p_base: float, p_cand: float, per_round: tuple[int, int], rounds: int = 3) -> str:
    """One canary: each bake round adds seeded thumbs up (1) / down (0) to both revisions; the verdict."""
    rng = random.Random(seed)
    base: list[float] = []
    cand: list[float] = []
    for round_no in range(rounds):
        base += [float(rng.random() < p_base) for _ in range(per_round[0])]
        cand += [float(rng.random() < p_cand) for _ in range(per_round[1])]
        verdict = policy.canary_verdict(RULES, _stats(base), _stats(cand), round_no=round_no, max_rounds=rounds)
        if verdict.action != "bake":
            return verdict.action
    raise AssertionError("the last round always decides")


def _rollback_rate(p_base: float, p_cand: float, per_round: tuple[int, int]) -> float:
    return sum(_canary(seed, p_base, p_cand, per_round) == "rollback" for seed in range(SEEDS)) / SEEDS


def test_a_truly_worse_revision_is_rolled_back_despite_noise() -> None:
    # users approve 80% of the base's replies and 40% of the candidate's; 20 scores each per round
    assert _rollback_rate(0.8, 0.4, (20, 20)) >= 0.95
    # no feedback on the base at all: a candidate users mostly dislike (20% approval) is still caught
    assert _rollback_rate(0.8, 0.2, (0, 20)) >= 0.95


@pytest.mark.parametrize("p, per_round", [(0.8, (20, 20)), (0.5, (20, 20)), (0.8, (30, 10)), (0.7, (10, 10))])
def test_an_equal_revision_is_not_rolled_back_by_noise(p: float, per_round: tuple[int, int]) -> None:
    assert _rollback_rate(p, p, per_round) <= 0.05
