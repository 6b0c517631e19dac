"""Runs per second with N conversations of one agent, against N senders sharing one conversation.

One agent; N threads each send ``--sends`` messages one after another and drive each run to its end
(the local runner's loop, as `o serve` does). In the ``conversations`` layout every thread has its
own conversation of the agent, so their runs go side by side; in the ``one conversation`` layout all
threads send to the agent's own history, so their runs take turns (queued in order). The model is a
local OpenAI-wire server that answers each call after ``--llm-ms`` (a model's latency: what side by
side runs overlap) with a send_message call, so each run is one step (one LLM call, one tool).

Postgres is embedded (or O_DATABASE_URL). Figures: runs/s, and p50/p95 of a run's latency (send to
end), per N and layout.

    python bench/conversations.py [--sends 20] [--llm-ms 50] [--n 1,2,4,8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.agent import conversations, lifecycle
from o.agent import runs as run_api
from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.agent.runner import drive
from o.config import AgentSettings
from o.store import orgs
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, Script, ScriptedCall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def new_agent(db: Database, org_id: str, server: OpenAIServer) -> str:
    llm = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": server.base_url}
    with db.transaction() as conn:
        spec = lifecycle.AgentSpec(
            name=f"bench-{uuid.uuid4().hex[:6]}",
            llm_config={**llm, "context_window": 128000},
            memory_blocks=[{"label": "human", "value": "Bench user.", "limit": 5000}],
        )
        return str(lifecycle.create(conn, org_id, spec).agent["id"])


def measure(db: Database, engine: Engine, org_id: str, agent_id: str, targets: list[str | None], sends: int) -> Any:
    """Each target (a conversation id, or None: the agent's own history) gets a sender thread."""
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def sender(index: int, conversation_id: str | None) -> None:
        for i in range(sends):
            t0 = time.perf_counter()
            with db.transaction() as conn:
                started = run_api.start(
                    conn,
                    org_id,
                    agent_id,
                    [run_api.InputMessage("user", f"sender {index} message {i}")],
                    {"max_steps": 5},
                    conversation_id=conversation_id,
                )
            outcome = drive(engine.deps(), started.run.id)
            if str(outcome.stop_reason) != "end_turn":
                failures.append(f"{started.run.id}: {outcome}")
            with lock:
                latencies.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=sender, args=(i, t)) for i, t in enumerate(targets)]
    started_at = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started_at
    assert not failures, failures[:3]
    return len(latencies) / elapsed, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=20, help="messages each sender sends")
    parser.add_argument("--llm-ms", type=float, default=50.0, help="the model's latency per call")
    parser.add_argument("--n", default="1,2,4,8", help="numbers of concurrent senders")
    args = parser.parse_args()
    counts = [int(n) for n in args.n.split(",")]

    url = os.environ.get("O_DATABASE_URL")
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-")), cleanup_mode="delete")
        url = embedded.url
    migrate(url)
    db = Database(url, min_size=1, max_size=max(counts) + 4).open()
    engine = Engine(db, llm_factory(TEST_KEYS, FAST_OPTIONS), settings=AgentSettings(), prompts=PromptCache())
    with db.transaction() as conn:
        org_id = orgs.get_or_create_org(conn, f"bench-{uuid.uuid4()}")["id"]
    reply = Reply(tool_calls=(ScriptedCall("send_message", {"message": "noted"}),), delay_s=args.llm_ms / 1000)
    server = OpenAIServer(Script(default=reply)).start()
    try:
        # warm up: imports, prepared statements, the token encoding
        measure(db, engine, org_id, new_agent(db, org_id, server), [None], 5)
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(
            f"runs of one agent: {args.sends} sends per sender, model latency {args.llm_ms:.0f} ms per call, "
            f"one step per run, Postgres {'embedded' if embedded else url}, {os.cpu_count()} CPUs, load {load}"
        )
        print(f"{'senders':>7} {'layout':<22} {'runs/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
        for n in counts:
            for layout in ("conversations", "one conversation"):
                agent_id = new_agent(db, org_id, server)
                targets: list[str | None]
                if layout == "conversations":
                    with db.transaction() as conn:
                        targets = [conversations.create(conn, org_id, agent_id, {})["id"] for _ in range(n)]
                else:
                    targets = [None] * n
                rate, latencies = measure(db, engine, org_id, agent_id, targets, args.sends)
                print(
                    f"{n:>7} {layout:<22} {rate:8.1f} {statistics.median(latencies):8.1f} {pct(latencies, 0.95):8.1f}"
                )
    finally:
        server.stop()
        db.close()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
