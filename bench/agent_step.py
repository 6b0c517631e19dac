"""Framework overhead of one agent step, excluding LLM time, and the process's memory.

A zero-latency local OpenAI-wire server (tests/servers) answers every LLM call through the
real ``openai`` SDK; the step runs against a real Postgres (embedded, or O_DATABASE_URL).
For each turn a run is created with a user message, then ``advance("step")`` (phase 1:
prompt, context check, LLM call, one transaction) and ``advance("tools")`` (phase 2: the
tool call and its result in one transaction, then the step's completion) are timed. The
provider's own latency (``ChatResponse.latency_ms``, measured around the SDK call) is
subtracted, leaving what O itself spends: SQL, prompt compile/cache, token counting,
tool-rule solving, JSON, SDK request building.

"O's CPU per step" is the CPU time of the stepping thread alone (SDK request building and
parsing, JSON, SQL client side, prompt and token work), which other processes competing for the
CPUs barely change; Postgres' own work and the scripted server's thread are not in it. "Postgres
CPU per turn" (embedded Postgres only) is the CPU time of the cluster's processes over a scenario
divided by its turns: the step's statements and commits, and also the turn's run start (API side)
and the bench's own read of its usage.

Scenarios: ``reply`` (the model calls send_message: prompt cached), ``edit`` (the model
calls core_memory_append, so every next step recompiles the prompt) and ``indexed`` (``reply`` on a
history indexed for recall, as after a search: each message carries a 1536-d embedding; the
indexing before each turn is not timed). Agents are rotated
every ``--turns-per-agent`` turns so histories stay conversation-sized.

    python bench/agent_step.py [--turns 300] [--turns-per-agent 10]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil
from psycopg import pq

from o.agent import lifecycle
from o.agent import runs as run_api
from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.agent.step import advance
from o.config import AgentSettings
from o.store import orgs
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres, cluster_processes
from o.store.migrate import migrate
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, Script, ScriptedCall


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def responder(kind: str) -> Any:
    def reply(body: dict[str, Any]) -> Reply:
        if kind == "edit":
            return Reply(
                tool_calls=(ScriptedCall("core_memory_append", {"label": "human", "content": "x"}),), usage=(500, 20)
            )
        return Reply(tool_calls=(ScriptedCall("send_message", {"message": "Hello there, noted."}),), usage=(500, 20))

    return reply


def index_history(db: Database, agent_id: str) -> None:
    """Give the agent's messages a 1536-d embedding each, as recall indexing does once its history is
    searched (conversation_search, or a search of the organization)."""
    with db.transaction() as conn:
        conn.execute(
            """UPDATE messages SET embedding_dim = 1536, embedding_model = 'bench',
                      embedding_1536 = (SELECT array_agg(random())::vector(1536) FROM generate_series(1, 1536))
               WHERE agent_id = %s AND embedding_1536 IS NULL""",
            (agent_id,),
        )


def postgres_cpu_s(embedded: EmbeddedPostgres | None) -> float:
    """CPU seconds the embedded cluster's processes have used so far (0 without one)."""
    total = 0.0
    for process in cluster_processes(embedded.pgdata) if embedded is not None else []:
        try:
            times = process.cpu_times()
        except psutil.Error:  # a backend that ended meanwhile
            continue
        total += times.user + times.system
    return total


def run_scenario(
    db: Database, engine: Engine, org_id: str, server: OpenAIServer, kind: str, turns: int, per_agent: int
) -> dict[str, list[float]]:
    server.script.default = responder(kind)
    llm = {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": server.base_url,
        "context_window": 128000,
    }
    out: dict[str, list[float]] = {"phase1": [], "phase2": [], "step": [], "start": [], "llm": [], "cpu": []}
    agent_id = ""
    for turn in range(turns):
        if turn % per_agent == 0:
            with db.transaction() as conn:
                agent_id = lifecycle.create(
                    conn,
                    org_id,
                    lifecycle.AgentSpec(
                        name=f"bench-{uuid.uuid4().hex[:6]}",
                        llm_config=llm,
                        memory_blocks=[
                            {"label": "persona", "value": "I am a helpful assistant.", "limit": 5000},
                            {"label": "human", "value": "Bench user.", "limit": 20000},
                        ],
                    ),
                ).agent["id"]
        if kind == "indexed":
            index_history(db, agent_id)
        t0 = time.perf_counter()
        with db.transaction() as conn:
            started = run_api.start(
                conn, org_id, agent_id, [run_api.InputMessage("user", f"message {turn}")], {"max_steps": 5}
            )
        t1 = time.perf_counter()
        deps = engine.deps()
        cpu0 = time.thread_time()
        first = advance(deps, started.run.id, "step")
        t2 = time.perf_counter()
        second = advance(deps, started.run.id, "tools")
        t3 = time.perf_counter()
        cpu = (time.thread_time() - cpu0) * 1000
        assert (first.next, second.next) == ("tools", "done"), (first, second)
        with db.transaction() as conn:
            step = conn.execute("SELECT usage FROM steps WHERE run_id = %s", (started.run.id,)).fetchone()
        llm_ms = float(step["usage"]["llm_ms"])
        out["start"].append((t1 - t0) * 1000)
        out["phase1"].append((t2 - t1) * 1000 - llm_ms)
        out["phase2"].append((t3 - t2) * 1000)
        out["step"].append((t3 - t1) * 1000 - llm_ms)
        out["llm"].append(llm_ms)
        out["cpu"].append(cpu)
    return out


def round_trips(url: str, org_id: str, server: OpenAIServer, kind: str) -> dict[str, dict[str, int]]:
    """The SQL round trips of each phase of one step, counted from libpq's protocol trace of the only
    connection of a one-connection pool (as on Lambda): each Sync (an extended-protocol statement, or
    several sent in one pipeline, an explicit BEGIN or COMMIT among them) or simple Query (BEGIN, COMMIT,
    SAVEPOINT; an empty one is the pool's check of a borrowed connection).

    The pool checks every borrow here (``recheck_after_s=0``), so the checks count the borrows; as
    deployed, a connection given back within ``o.store.db.FRESH_S`` is lent unchecked, which a step's
    borrows after a short LLM call are (subtract the checks for that case)."""
    db = Database(url, min_size=1, max_size=1, recheck_after_s=0).open()
    engine = Engine(db, llm_factory(TEST_KEYS, FAST_OPTIONS), settings=AgentSettings(), prompts=PromptCache())
    server.script.default = responder(kind)
    llm = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": server.base_url}
    blocks = [{"label": "persona", "value": "I am a helpful assistant."}, {"label": "human", "value": "Bench user."}]
    with db.transaction() as conn:
        agent_id = lifecycle.create(
            conn, org_id, lifecycle.AgentSpec(name="round-trips", llm_config=llm, memory_blocks=blocks)
        ).agent["id"]
    counts: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryFile("w+") as trace:
        for turn in range(4):  # the last turn is traced: statements prepared, prompt cached as in steady state
            with db.transaction() as conn:
                run_id = run_api.start(conn, org_id, agent_id, [run_api.InputMessage("user", f"hi {turn}")], {}).run.id
            if turn == 3:
                with db._pool.connection() as conn:  # the pool's only connection: the phases borrow it
                    conn.pgconn.trace(trace.fileno())
                    conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            for phase in ("step", "tools"):
                trace.write(f"=== {phase}\n")
                trace.flush()
                advance(engine.deps(), run_id, phase)
        trace.write("=== end\n")
        trace.flush()
        with db._pool.connection() as conn:
            conn.pgconn.untrace()
        trace.seek(0)
        phase = ""
        for line in trace:
            if line.startswith("=== "):
                phase = line.split()[1]
                counts[phase] = {"statements or pipelines": 0, "BEGIN/COMMIT/SAVEPOINT": 0, "pool checks": 0}
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3 or parts[0] != "F" or not phase:
                continue
            message = parts[2].split(" ")[0]
            if message == "Sync":
                counts[phase]["statements or pipelines"] += 1
            elif message == "Query":
                empty = parts[-1].strip() == '""'
                counts[phase]["pool checks" if empty else "BEGIN/COMMIT/SAVEPOINT"] += 1
    db.close()
    counts.pop("end", None)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--turns-per-agent", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()

    rss_start = rss_mb()
    url = os.environ.get("O_DATABASE_URL")
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-")), cleanup_mode="delete")
        url = embedded.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    engine = Engine(db, llm_factory(TEST_KEYS, FAST_OPTIONS), settings=AgentSettings(), prompts=PromptCache())
    with db.transaction() as conn:
        org_id = orgs.get_or_create_org(conn, f"bench-{uuid.uuid4()}")["id"]
    server = OpenAIServer(Script()).start()
    try:
        run_scenario(db, engine, org_id, server, "reply", args.warmup, args.turns_per_agent)
        load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
        print(
            f"agent step overhead (LLM time excluded), {args.turns} turns per scenario, "
            f"new agent every {args.turns_per_agent} turns, Postgres at {'embedded' if embedded else url}, "
            f"{os.cpu_count()} CPUs, load average {load}"
        )
        print(
            "best-batch p50: the lowest median of 5 equal batches, a figure less sensitive to other "
            "processes competing for the CPUs"
        )
        print(
            f"{'scenario':<8} {'part':<22} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8} "
            f"{'best-batch p50':>15}"
        )
        for kind in ("reply", "edit", "indexed"):
            pg_before = postgres_cpu_s(embedded)
            figures = run_scenario(db, engine, org_id, server, kind, args.turns, args.turns_per_agent)
            pg_ms = (postgres_cpu_s(embedded) - pg_before) * 1000 / args.turns
            for part, label in (
                ("step", "step (phase 1 + 2)"),
                ("phase1", "phase 1 (LLM phase)"),
                ("phase2", "phase 2 (tools)"),
                ("start", "run start (API side)"),
                ("llm", "LLM round trip"),
                ("cpu", "O's CPU per step"),
            ):
                values = figures[part]
                size = max(1, len(values) // 5)
                best = min(statistics.median(values[i : i + size]) for i in range(0, len(values) - size + 1, size))
                print(
                    f"{kind:<8} {label:<22} {pct(values, 0.5):8.2f} {pct(values, 0.95):8.2f} "
                    f"{pct(values, 0.99):8.2f} {statistics.fmean(values):8.2f} {best:15.2f}"
                )
            if embedded is not None:
                print(f"{kind:<8} {'Postgres CPU per turn':<22} {'':>8} {'':>8} {'':>8} {pg_ms:8.2f}")
        print(f"prompt cache: {engine.prompts.hits} hits, {engine.prompts.misses} misses")
        for kind in ("reply", "edit"):
            for phase, kinds in round_trips(url, org_id, server, kind).items():
                each = ", ".join(f"{n} {what}" for what, n in kinds.items())
                print(f"SQL round trips, {kind} step, phase {phase}: {sum(kinds.values())} ({each})")
        # The floor under every step: each one makes 2-3 durable commits (WAL flushed to disk).
        commits = []
        for _ in range(200):
            t0 = time.perf_counter()
            with db.transaction() as conn:
                conn.execute("UPDATE organizations SET name = name WHERE id = %s", (org_id,))
            commits.append((time.perf_counter() - t0) * 1000)
        print(
            f"one durable write transaction (UPDATE + COMMIT) on this Postgres: p50 {pct(commits, 0.5):.2f} ms, "
            f"p95 {pct(commits, 0.95):.2f} ms"
        )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"RSS: {rss_start:.0f} MB at start, {rss_mb():.0f} MB now, peak {peak:.0f} MB "
            "(includes the scripted LLM server thread and the token encoding)"
        )
    finally:
        server.stop()
        db.close()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
