"""Self-evolution on the deterministic task: promotions, rollbacks, held-out score before and after.

    python bench/evolution.py [--rounds N]

The task (tests/integration/evolution/task.py): a capital-cities agent whose replies are too wordy,
an evaluation suite of 6 gate cases and 3 held-out cases, and a scripted OpenAI-wire server playing
the agent's model, the proposer and the judge through the real SDK, the real agent loop and the
real evolution code on an embedded Postgres. Each round proposes, in order, a worse, a crashing, a
timing-out, an evaluator-tampering and a better candidate (the better one is proposed again in later
rounds, where it changes nothing and is refused). Prints each evolution's decision, duration, tokens
and the shadow scores, then the totals and the held-out score of the revision running before and after.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.evolution import loop
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate
from tests.integration.evolution import task
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script

SCENARIOS = [
    ("worse", task.WORSE, {}),
    ("crashing", task.CRASHING, {}),
    ("timing-out", task.TIMING_OUT, {"max_seconds": 1.0}),
    ("tampering", task.TAMPERING, {}),
    ("better", task.BETTER, {}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="times to run the five scenarios on the same agent")
    args = parser.parse_args()

    server_pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-evo-")), cleanup_mode="delete")
    world = task.World()
    try:
        migrate(server_pg.url)
        db = Database(server_pg.url, min_size=1, max_size=8).open()
        with OpenAIServer(Script(default=world)) as server:
            deps = task.make_deps(db)
            org, agent_id = task.make_agent(db, server)
            before = task.held_out_score(deps, org, agent_id, 1)
            print(
                f"{'round':>5} {'candidate':<11} {'decision':<12} {'seconds':>8} {'tokens':>7} "
                f"{'shadow cur':>10} {'shadow cand':>11}  reason"
            )
            promotions = rollbacks = 0
            seconds: list[float] = []
            for round_no in range(1, args.rounds + 1):
                for name, proposal, budget in SCENARIOS:
                    world.propose(proposal)
                    t0 = time.perf_counter()
                    evo = loop.start(deps, org, agent_id, budget=budget)
                    final = loop.run_local(deps, evo.id, sleep=lambda _s: None, during_bake=task.live_traffic(deps))
                    took = time.perf_counter() - t0
                    seconds.append(took)
                    shadow = final.figures.get("shadow") or {}
                    promotions += final.decision == "promoted"
                    rollbacks += final.decision == "rolled_back"
                    print(
                        f"{round_no:>5} {name:<11} {final.decision!s:<12} {took:>8.2f} {final.tokens_used:>7} "
                        f"{shadow.get('current', {}).get('score', '-')!s:>10} "
                        f"{shadow.get('candidate', {}).get('score', '-')!s:>11}  {(final.reason or '')[:70]}"
                    )
            if task.SLOW_SECONDS:
                time.sleep(task.SLOW_SECONDS)  # let the abandoned slow replay finish before measuring
            with db.transaction() as conn:
                running = conn.execute("SELECT revision FROM agents WHERE id = %s", (agent_id,)).fetchone()["revision"]
            after = task.held_out_score(deps, org, agent_id, running)
        db.close()
    finally:
        server_pg.stop()
    print()
    print(f"evolutions: {len(seconds)}  promotions: {promotions}  rollbacks: {rollbacks}")
    print(f"seconds per evolution: mean {sum(seconds) / len(seconds):.2f}  max {max(seconds):.2f}")
    print(f"held-out score: before {before:.3f} (revision 1)  after {after:.3f} (revision {running})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
