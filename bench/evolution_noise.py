"""The evolution gate on a noisy model whose truth is known: false promotions and missed improvements.

    python bench/evolution_noise.py [--trials 1000] [--seed 1]

A scripted stochastic model (tests/unit/evolution/noisy.py): each revision answers each case right
with a known probability, independently on every replay. For each condition (true quality of current
and candidate, suite size, samples per case) it runs ``--trials`` shadow tests and prints how often
the old gate (a fixed +0.01 threshold on the mean, no case may score lower) and the new gate (exact
paired sign test at alpha 0.05, at least 6 cases) promote, with the replays and tokens each decision
spends. A candidate no better than the current one should be promoted at most 5% of the time; a
clearly better one (+25 points) on 80 cases at least 80% of the time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.evolution import evaluator
from tests.unit.evolution.noisy import OLD_GATE, Truth, promotion_rate

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
    print(f"({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
