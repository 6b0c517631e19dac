"""The gate on a noisy model whose truth is known: it promotes what is better and rarely what is not.

Default settings, seeded trials (repeatable). The targets are the product's: at most 5% false
promotions whatever the suite size, at least 80% of clearly better candidates (60% → 85% right)
promoted on 80 cases. ``bench/evolution_noise.py`` prints the same figures with more trials.
"""

from __future__ import annotations

import pytest

from o.evolution import evaluator
from tests.unit.evolution.noisy import OLD_GATE, Truth, promotion_rate

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
