"""The evolution gate on a noisy model whose truth is known: false promotions and missed improvements.

    python bench/evolution_noise.py [--trials 1000] [--seed 1]

A scripted stochastic model (tests/unit/evolution/noisy.py): each revision answers each case right
with a known probability, independently on every replay. For each condition (true quality of current
and candidate, suite size, samples per case) it runs ``--trials`` shadow tests and prints how often
the old gate (a fixed +0.01 threshold on the mean, no case may score lower) and the new gate (exact
paired sign test at alpha 0.05, at least 6 cases) promote, with the replays and tokens each decision
spends. A candidate no better than the current one should be promoted at most 5% of the time; a
clearly better one (+25 points) on 80 cases at least 80% of the time.

Then a canary simulation with live-traffic noise: each round the agent serves a Poisson number of live
turns split by the step's weight (5% -> 25% -> 50%, then promotion), every turn fails with its revision's
error rate and takes a log-normally noisy time; the canary's verdict (Mann-Whitney U per live metric,
minimum traffic per step, at most 3 rounds per step) bakes, steps, promotes or rolls back. It prints how
often a sound, an erring and a slower canary end promoted, rolled back or inconclusive at each traffic level.

Last, judge-scored canaries: each revision's live reply is right with a known probability (base 60%), a noisy
judge (model output: about 0.8 for a right reply, 0.3 for a wrong one, sd 0.25) scores a sampled share of the
replies on both sides, and the judge check (Mann-Whitney, canary below baseline by more than 0.1, at
judge_alpha 0.01, at least 10 scores a side) joins the others. The errors and latency are the same on both
sides, so only the judge can tell a worse canary; the row with no sample shows what it misses without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.evolution import evaluator
from tests.unit.evolution.noisy import OLD_GATE, LiveTruth, Truth, canary_rates, promotion_rate

TOKENS_PER_REPLAY = 50  # what the scripted replies cost; a real model's replay costs its own

CONDITIONS = [
    # (label, truth, cases, samples)
    ("worse (-20 pts)", Truth(0.6, 0.4), 20, 1),
    ("no better", Truth(0.6, 0.6), 8, 1),
    ("no better", Truth(0.6, 0.6), 20, 1),
    ("no better", Truth(0.6, 0.6), 80, 1),
    ("no better", Truth(0.6, 0.6), 80, 3),
    ("slightly better (+10 pts)", Truth(0.6, 0.7), 20, 1),
    ("slightly better (+10 pts)", Truth(0.6, 0.7), 80, 1),
    ("slightly better (+10 pts)", Truth(0.6, 0.7), 80, 3),
    ("clearly better (+25 pts)", Truth(0.6, 0.85), 8, 1),
    ("clearly better (+25 pts)", Truth(0.6, 0.85), 20, 1),
    ("clearly better (+25 pts)", Truth(0.6, 0.85), 80, 1),
]


BASE_LIVE = LiveTruth(error_rate=0.02, latency_ms=800.0)
CANARIES = [
    ("sound (same as base)", BASE_LIVE),
    ("errs more (2% -> 10%)", LiveTruth(0.10, 800.0)),
    ("slower (800 -> 2000 ms)", LiveTruth(0.02, 2000.0)),
]


def canary_table(trials: int, seed: int) -> None:
    header = f"{'canary':<26}{'turns/round':>12}{'promoted':>10}{'rolled back':>13}{'inconclusive':>14}"
    print(f"\ncanary outcomes over {trials} seeded canaries per row (base: 2% errors, 800 ms median)")
    print(header)
    print("-" * len(header))
    for i, (label, truth) in enumerate(CANARIES):
        for traffic in (20, 100, 400):
            rates = canary_rates(BASE_LIVE, truth, turns_per_round=traffic, trials=trials, seed=seed * 100 + i)
            print(
                f"{label:<26}{traffic:>12}{rates['promoted']:>10.1%}{rates['rolled_back']:>13.1%}"
                f"{rates['inconclusive']:>14.1%}"
            )


JUDGED_CANARIES = [
    ("sound (right 60%)", BASE_LIVE),
    ("worse (right 60% -> 30%)", LiveTruth(0.02, 800.0, quality=0.3)),
    ("worse (right 60% -> 20%)", LiveTruth(0.02, 800.0, quality=0.2)),
]


def judge_table(trials: int, seed: int) -> None:
    header = f"{'canary':<26}{'judged':>8}{'turns/round':>12}{'promoted':>10}{'rolled back':>13}{'inconclusive':>14}"
    print(f"\njudge-scored canaries over {trials} seeded canaries per row (noisy judge, share of replies judged)")
    print(header)
    print("-" * len(header))
    for i, (label, truth) in enumerate(JUDGED_CANARIES):
        for share in (0.0, 0.1, 0.5):
            rules = evaluator.CanaryGate(judge_sample=share)
            for traffic in (100, 400):
                rates = canary_rates(
                    BASE_LIVE, truth, turns_per_round=traffic, trials=trials, seed=seed * 1000 + i, rules=rules
                )
                print(
                    f"{label:<26}{share:>8.0%}{traffic:>12}{rates['promoted']:>10.1%}{rates['rolled_back']:>13.1%}"
                    f"{rates['inconclusive']:>14.1%}"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    new_gate = evaluator.Gate()
    started = time.perf_counter()
    header = f"{'candidate':<27}{'cases':>6}{'samples':>8}{'old gate':>10}{'new gate':>10}{'replays':>9}{'tokens':>8}"
    print(f"promotion rate over {args.trials} seeded shadow tests per row (current revision right 60% of the time)")
    print(header)
    print("-" * len(header))
    false_old: list[float] = []
    false_new: list[float] = []
    for i, (label, truth, cases, samples) in enumerate(CONDITIONS):
        seed = args.seed * 1000 + i
        old = promotion_rate(OLD_GATE, truth, cases=cases, trials=args.trials, seed=seed, samples=samples)
        new = promotion_rate(new_gate, truth, cases=cases, trials=args.trials, seed=seed, samples=samples)
        if not truth.better:
            false_old.append(old)
            false_new.append(new)
        replays = 2 * cases * samples
        print(f"{label:<27}{cases:>6}{samples:>8}{old:>10.1%}{new:>10.1%}{replays:>9}{replays * TOKENS_PER_REPLAY:>8}")
    print("-" * len(header))
    print(f"worst false-promotion rate: old {max(false_old):.1%}, new {max(false_new):.1%} (target <= 5%)")
    canary_table(max(50, args.trials // 4), args.seed)
    judge_table(max(50, args.trials // 4), args.seed)
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
