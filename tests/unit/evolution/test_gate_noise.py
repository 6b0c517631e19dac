"""The gate on a noisy model whose truth is known: it promotes what is better and rarely what is not.

Default settings, seeded trials (repeatable). The targets are the product's: at most 5% false
promotions whatever the suite size, at least 80% of clearly better candidates (60% → 85% right)
promoted on 80 cases. ``bench/evolution_noise.py`` prints the same figures with more trials.
"""

from __future__ import annotations

import pytest

from o.evolution import evaluator
from tests.unit.evolution.noisy import OLD_GATE, LiveTruth, Truth, canary_rates, promotion_rate

TRIALS = 300
EQUAL = Truth(current=0.6, candidate=0.6)
BETTER = Truth(current=0.6, candidate=0.85)


@pytest.mark.parametrize("cases", [8, 20, 80])
def test_a_candidate_that_is_no_better_is_rarely_promoted(cases: int) -> None:
    rate = promotion_rate(evaluator.Gate(), EQUAL, cases=cases, trials=TRIALS, seed=cases)
    assert rate <= 0.05, f"{rate:.1%} false promotions on {cases} cases"


def test_a_worse_candidate_is_never_promoted() -> None:
    worse = Truth(current=0.6, candidate=0.4)
    assert promotion_rate(evaluator.Gate(), worse, cases=80, trials=TRIALS, seed=7) == 0.0


def test_a_clearly_better_candidate_is_promoted_on_80_cases() -> None:
    rate = promotion_rate(evaluator.Gate(), BETTER, cases=80, trials=TRIALS, seed=80)
    assert rate >= 0.8, f"only {rate:.1%} of clearly better candidates promoted"


def test_sampling_each_case_more_often_finds_a_smaller_improvement() -> None:
    slightly = Truth(current=0.6, candidate=0.75)
    once = promotion_rate(evaluator.Gate(), slightly, cases=20, trials=TRIALS, seed=3)
    thrice = promotion_rate(evaluator.Gate(), slightly, cases=20, trials=TRIALS, seed=3, samples=3)
    assert thrice > once


def test_the_old_fixed_threshold_gate_failed_both_ways() -> None:
    # what the issue measured: better candidates blocked by noise, chance wins let through on small suites
    assert promotion_rate(OLD_GATE, BETTER, cases=80, trials=100, seed=1) == 0.0
    assert promotion_rate(OLD_GATE, EQUAL, cases=8, trials=TRIALS, seed=2) > 0.05


# --- the canary on noisy live traffic (steps 5% -> 25% -> 50%, then promotion) -------------------------------

BASE_LIVE = LiveTruth(error_rate=0.02)


def test_a_quiet_agent_ends_inconclusive_and_is_never_promoted() -> None:
    rates = canary_rates(BASE_LIVE, BASE_LIVE, turns_per_round=20, trials=60, seed=1)
    assert rates["promoted"] == 0.0 and rates["inconclusive"] == 1.0


def test_a_sound_canary_steps_through_to_promotion() -> None:
    rates = canary_rates(BASE_LIVE, BASE_LIVE, turns_per_round=400, trials=60, seed=2)
    assert rates["promoted"] >= 0.9, rates


def test_a_canary_that_errs_more_or_is_slower_is_rolled_back() -> None:
    erring = canary_rates(BASE_LIVE, LiveTruth(error_rate=0.10), turns_per_round=400, trials=60, seed=3)
    assert erring["promoted"] <= 0.05, erring
    slow = canary_rates(BASE_LIVE, LiveTruth(0.02, latency_ms=2000.0), turns_per_round=100, trials=60, seed=4)
    assert slow["promoted"] == 0.0 and slow["rolled_back"] >= 0.8, slow


# --- judge scores on a sample of live replies: a noisy judge (model output) of replies whose truth is known ----

JUDGED = evaluator.CanaryGate(judge_sample=0.5)


def test_a_canary_worse_by_the_judge_is_rolled_back_and_a_sound_one_is_not() -> None:
    # the same errors and latency on both sides: only the judge's scores of live replies can tell them apart
    worse = canary_rates(BASE_LIVE, LiveTruth(0.02, quality=0.3), turns_per_round=400, trials=60, seed=5, rules=JUDGED)
    assert worse["rolled_back"] >= 0.8 and worse["promoted"] <= 0.15, worse
    sound = canary_rates(BASE_LIVE, BASE_LIVE, turns_per_round=400, trials=60, seed=6, rules=JUDGED)
    assert sound["promoted"] >= 0.9 and sound["rolled_back"] <= 0.1, sound
    # without the judge's sample the worse canary is indistinguishable from a sound one
    blind = evaluator.CanaryGate(judge_sample=0.0)
    unseen = canary_rates(BASE_LIVE, LiveTruth(0.02, quality=0.3), turns_per_round=400, trials=60, seed=5, rules=blind)
    assert unseen["promoted"] >= 0.9, unseen
