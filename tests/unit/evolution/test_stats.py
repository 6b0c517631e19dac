"""The gate's paired statistics, against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from o.evolution import stats


def test_sign_test_matches_the_binomial_tail() -> None:
    assert stats.sign_test_p(0, 0) == 1.0
    assert stats.sign_test_p(5, 0) == 1 / 32
    assert stats.sign_test_p(0, 5) == 1.0
    # 27 better, 7 worse: the tail of Binomial(34, 1/2) from 27
    assert stats.sign_test_p(27, 7) == pytest.approx(sum(math.comb(34, k) for k in range(27, 35)) / 2**34)
    assert stats.sign_test_p(3, 3) == pytest.approx(42 / 64)


def test_paired_evidence_counts_wins_losses_and_ties() -> None:
    evidence = stats.paired([0.5, 1.0, 0.0, 0.2], [1.0, 1.0, 1.0, 0.1])
    assert (evidence.cases, evidence.wins, evidence.losses) == (4, 2, 1)
    assert evidence.mean_delta == pytest.approx((0.5 + 0 + 1.0 - 0.1) / 4)
    assert evidence.ci_low < evidence.mean_delta < evidence.ci_high
    assert evidence.p_value == pytest.approx(stats.sign_test_p(2, 1))
    assert evidence.as_dict()["ties"] == 1
    with pytest.raises(ValueError):
        stats.paired([1.0], [1.0, 0.0])


def test_interval_narrows_with_more_cases() -> None:
    few = stats.mean_interval([1.0, 0.0] * 4)
    many = stats.mean_interval([1.0, 0.0] * 40)
    assert few[0] == many[0] == 0.5
    assert many[2] - many[1] < few[2] - few[1]
