"""Chaos: crashes and faults at scale, and what they cost in lost or duplicated data.

Real Postgres, a local OpenAI-wire server scripted as a two-step agent (step 1 appends a marker to
a memory block and asks for another step, step 2 answers), real `o serve` processes and signals.

- **kill at a random step boundary, in-process** (``--runs``, default 1,000): each run is "killed"
  once (``SimulatedCrash``) at a boundary drawn at random: inside a phase (after the LLM reply,
  before a tool result commits, right after it commits) or between two actions; then resumed from
  its durable state as a restarted process does (``runner.resume_stale``). Each run must end with
  one user message, two replies, two tool results, and its memory edit applied once.
- **kill -9 of `o serve`** (``--serve-rounds``): each round sends runs over HTTP to a few agents
  (several per agent, so they queue), kills the server at a random moment, starts a new one on the
  same data dir and waits until every run finished; the same counts are checked in Postgres.
- **Postgres killed under load** (``--pg-kills``): writers create blocks over HTTP while the
  embedded Postgres is killed with SIGKILL; every acknowledged (200) write must be there after,
  no request may hang, and the time from each kill to the first healthy answer is measured.

    python bench/chaos.py [--runs 1000] [--serve-rounds 10] [--pg-kills 5]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.agent import lifecycle
from o.agent import runs as run_api
from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.agent.runner import resume_stale
from o.agent.step import Outcome, SimulatedCrash, advance
from o.config import AgentSettings
from o.store import orgs
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres, cluster_processes
from o.store.migrate import migrate
from o.store.records import NextAction
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, last_user_text

# one user message, the two steps' replies, their two tool results (the memory edit, send_message)
EXPECTED = {"user": 1, "assistant": 2, "tool": 2}
# where a run can be killed: inside a phase (the fault hook's points, by occurrence) or between actions
BOUNDARIES = [
    ("after_llm", 1),
    ("after_llm", 2),
    ("before_tool_commit", 1),
    ("after_tool", 1),
    ("between", 1),
    ("between", 2),
    ("between", 3),
]
_NOTE = re.compile(r"note (\S+)")


def two_steps(delay_s: float = 0.0) -> Any:
    """Step 1: append ``[<note>]`` to the human block and ask for another step; step 2: answer."""

    def answer(body: dict[str, Any]) -> Reply:
        note = _NOTE.search(last_user_text(body))
        marker = note.group(1) if note else "?"
        last = body["messages"][-1]
        if last.get("role") == "tool":
            return Reply(tool_calls=(ScriptedCall("send_message", {"message": f"noted {marker}"}),), delay_s=delay_s)
        append = {"label": "human", "content": f" [{marker}]", "request_heartbeat": True}
        return Reply(tool_calls=(ScriptedCall("core_memory_append", append),), delay_s=delay_s)

    return answer


@dataclass
class Tally:
    runs: int = 0
    # runs that had not finished when the process was killed
    interrupted: int = 0
    completed: int = 0
    lost: int = 0
    duplicated: int = 0
    edits_lost: int = 0
    edits_doubled: int = 0
    boundaries: Counter[str] = field(default_factory=Counter)

    def check(self, roles: Counter[str], edits: int, status: str) -> None:
        self.runs += 1
        self.completed += status == "completed"
        for role, want in EXPECTED.items():
            have = roles.get(role, 0)
            self.lost += max(0, want - have)
            self.duplicated += max(0, have - want)
        self.duplicated += sum(n for role, n in roles.items() if role not in EXPECTED)
        self.edits_lost += edits == 0
        self.edits_doubled += max(0, edits - 1)

    def report(self, label: str) -> None:
        print(
            f"  {label}: {self.runs} runs, {self.interrupted} of them unfinished when killed, "
            f"{self.completed} completed after the restart"
        )
        print(f"    messages lost {self.lost}, duplicated {self.duplicated}")
        print(f"    memory edits lost {self.edits_lost}, applied twice {self.edits_doubled}")
        if self.boundaries:
            print("    kills by boundary: " + ", ".join(f"{k} {v}" for k, v in sorted(self.boundaries.items())))


def run_facts(conn: psycopg.Connection[dict[str, Any]], run_id: str, marker: str) -> tuple[Counter[str], int, str]:
    """A run's messages by role, how often its marker is in its agent's human block, and its status."""
    roles = Counter(
        r["role"] for r in conn.execute("SELECT role FROM messages WHERE run_id = %s", (run_id,)).fetchall()
    )
    row = conn.execute(
        """SELECT r.status, b.value FROM runs r
           JOIN agent_blocks ab ON ab.agent_id = r.agent_id AND ab.label = 'human'
           JOIN blocks b ON b.id = ab.block_id WHERE r.id = %s""",
        (run_id,),
    ).fetchone()
    assert row is not None
    return roles, str(row["value"]).count(f"[{marker}]"), str(row["status"])


# -- 1. in-process kills at random step boundaries ------------------------------------------------------


def kill_once(engine: Engine, run_id: str, boundary: tuple[str, int]) -> bool:
    """Drive the run until the boundary, where the "process" dies; whether it died before the end."""
    kind, nth = boundary
    seen: Counter[str] = Counter()

    def fault(point: str) -> None:
        seen[point] += 1
        if point == kind and seen[point] == nth:
            raise SimulatedCrash(point)

    deps = engine.deps(fault=fault)
    outcome = Outcome(run_id, 0, NextAction.STEP)
    actions = 0
    try:
        while outcome.next.due:
            outcome = advance(deps, run_id, outcome.next, outcome.iteration)
            actions += 1
            if kind == "between" and actions == nth and outcome.next.due:
                raise SimulatedCrash("between")
    except SimulatedCrash:
        return True
    return False


def in_process(runs: int, seed: int) -> Tally:
    rng = random.Random(seed)
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-chaos-")), cleanup_mode="delete")
    tally = Tally()
    try:
        migrate(pg.url)
        db = Database(pg.url, max_size=4).open()
        with OpenAIServer() as server:
            server.script.default = two_steps()
            engine = Engine(
                db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(), prompts=PromptCache()
            )
            llm = {
                "model": "gpt-4o-mini",
                "model_endpoint_type": "openai",
                "model_endpoint": server.base_url,
                "context_window": 128000,
            }
            with db.transaction() as conn:
                org = orgs.get_or_create_org(conn, f"chaos-{uuid.uuid4()}")["id"]
            agent_id = ""
            for i in range(runs):
                if i % 10 == 0:  # conversation-sized histories
                    spec = lifecycle.AgentSpec(
                        name="chaos", llm_config=llm, memory_blocks=[{"label": "human", "value": "", "limit": 100_000}]
                    )
                    with db.transaction() as conn:
                        agent_id = lifecycle.create(conn, org, spec).agent["id"]
                marker = f"r{i}"
                with db.transaction() as conn:
                    run = run_api.start(conn, org, agent_id, [run_api.InputMessage("user", f"note {marker}")], {}).run
                boundary = rng.choice(BOUNDARIES)
                if kill_once(engine, run.id, boundary):
                    tally.boundaries[f"{boundary[0]}#{boundary[1]}"] += 1
                    tally.interrupted += 1
                resume_stale(engine.deps(), idle_s=0)  # the restarted process picks it up
                with db.transaction() as conn:
                    tally.check(*run_facts(conn, run.id, marker))
        db.close()
    finally:
        pg.stop()
    return tally


# -- `o serve` processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Serve:
    proc: subprocess.Popen[bytes]
    url: str


def serve(data_dir: Path, env: dict[str, str]) -> Serve:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "o.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health/", timeout=1).status_code == 200:
                return Serve(proc, url)
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("o serve did not become healthy")


def new_key(data_dir: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "o.cli", "keys", "create", "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]  # the key is the last line (warnings may come first)


def stop(server: Serve) -> None:
    server.proc.send_signal(signal.SIGTERM)
    server.proc.wait(timeout=30)


def serve_env() -> dict[str, str]:
    # the agents' endpoint is the protocol server on loopback, which this operator lets agents name
    env = {
        **os.environ,
        "O_SLEEPTIME": "false",
        "O_LOG_LEVEL": "WARNING",
        "OPENAI_API_KEY": "sk-test",
        "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1",
    }
    env.pop("O_DATABASE_URL", None)
    return env


def database_url(data_dir: Path) -> str:
    return f"postgresql://postgres:@/postgres?host={data_dir / 'pgdata'}"


# -- 2. kill -9 of `o serve` ---------------------------------------------------------------------------


def send_runs(
    http: httpx.Client, llm: dict[str, Any], round_no: int, agents: int, per_agent: int
) -> list[tuple[str, str]]:
    """Async sends, several to each new agent (so they queue): (run id, its marker)."""
    sent = []
    for a in range(agents):
        body = {"llm_config": llm, "memory_blocks": [{"label": "human", "value": "", "limit": 100_000}]}
        agent_id = http.post("/v1/agents/", json=body).json()["id"]
        for k in range(per_agent):
            marker = f"s{round_no}-{a}-{k}"
            msg = {"messages": [{"role": "user", "content": f"note {marker}"}]}
            sent.append((http.post(f"/v1/agents/{agent_id}/messages/async", json=msg).json()["id"], marker))
    return sent


def unfinished(conn: psycopg.Connection[dict[str, Any]], run_ids: list[str]) -> int:
    rows = conn.execute(
        "SELECT id FROM runs WHERE id = ANY(%s) AND next_action NOT IN ('done', 'failed')", (run_ids,)
    ).fetchall()
    return len(rows)


def wait_until_ended(conn: psycopg.Connection[dict[str, Any]], run_ids: list[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = conn.execute("SELECT status FROM runs WHERE id = ANY(%s)", (run_ids,)).fetchall()
        if all(r["status"] in ("completed", "failed", "cancelled") for r in rows):
            return
        time.sleep(0.1)


def serve_kills(rounds: int, seed: int, agents: int = 3, runs_per_agent: int = 3) -> Tally:
    rng = random.Random(seed)
    data_dir = Path(tempfile.mkdtemp(prefix="o-chaos-serve-"))
    env = serve_env()
    tally = Tally()
    with OpenAIServer() as llm_server:
        llm_server.script.default = two_steps(delay_s=0.03)
        llm = {
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": llm_server.base_url,
            "context_window": 128000,
        }
        server = serve(data_dir, env)
        try:
            headers = {"Authorization": f"Bearer {new_key(data_dir, env)}"}
            for round_no in range(rounds):
                with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
                    sent = send_runs(http, llm, round_no, agents, runs_per_agent)
                run_ids = [run_id for run_id, _ in sent]
                # a run takes ~4 LLM round trips of 30 ms, and an agent's runs queue: kill somewhere inside
                time.sleep(rng.uniform(0.0, 0.6))
                server.proc.kill()
                server.proc.wait()
                with psycopg.connect(database_url(data_dir), row_factory=dict_row, autocommit=True) as conn:
                    tally.interrupted += unfinished(conn, run_ids)
                    server = serve(data_dir, env)  # finishes what the killed one left, from Postgres
                    wait_until_ended(conn, run_ids)
                    for run_id, marker in sent:
                        tally.check(*run_facts(conn, run_id, marker))
        finally:
            stop(server)
    left = cluster_processes(data_dir / "pgdata")
    if left:
        print(f"  WARNING: {len(left)} Postgres processes left after the last o serve stopped")
    return tally


# -- 3. Postgres killed under load ---------------------------------------------------------------------


@dataclass
class Load:
    acknowledged: list[str] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def write_until(url: str, headers: dict[str, str], stop_at: threading.Event, load: Load, writer: int) -> None:
    n = 0
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        while not stop_at.is_set():
            n += 1
            started = time.monotonic()
            try:
                r = http.post("/v1/blocks/", json={"label": f"w{writer}-{n}", "value": f"v{writer}-{n}"})
                status = str(r.status_code)
                block_id = r.json().get("id") if r.status_code == 200 else None
            except httpx.HTTPError as exc:
                status, block_id = type(exc).__name__, None
            took = time.monotonic() - started
            with load.lock:
                load.statuses[status] += 1
                load.slowest_s = max(load.slowest_s, took)
                if block_id:
                    load.acknowledged.append(block_id)
            if status != "200":
                time.sleep(0.05)


def postgres_kills(kills: int, writers: int = 4, gap_s: float = 2.0) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="o-chaos-pg-"))
    env = serve_env()
    server = serve(data_dir, env)
    try:
        measure_postgres_kills(server, data_dir, env, kills, writers, gap_s)
    finally:
        stop(server)
    left = cluster_processes(data_dir / "pgdata")
    if left:
        print(f"  WARNING: {len(left)} Postgres processes left after o serve stopped")


def measure_postgres_kills(
    server: Serve, data_dir: Path, env: dict[str, str], kills: int, writers: int, gap_s: float
) -> None:
    headers = {"Authorization": f"Bearer {new_key(data_dir, env)}"}
    load = Load()
    stop_at = threading.Event()
    threads = [
        threading.Thread(target=write_until, args=(server.url, headers, stop_at, load, w), daemon=True)
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    recoveries: list[float] = []
    try:
        for _ in range(kills):
            time.sleep(gap_s)
            recoveries.append(kill_postgres(server, data_dir))
        time.sleep(gap_s)
    finally:
        stop_at.set()
        for t in threads:
            t.join(30)
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        missing = sum(http.get(f"/v1/blocks/{block_id}").status_code != 200 for block_id in load.acknowledged)
    report_load(load, kills, writers, missing, recoveries)


def kill_postgres(server: Serve, data_dir: Path) -> float:
    """SIGKILL the server's Postgres; the seconds until ``/v1/health/`` answers 200 again."""
    pid = int((data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    while True:
        try:
            if httpx.get(server.url + "/v1/health/", timeout=5).status_code == 200:
                return time.monotonic() - killed
        except httpx.HTTPError:
            pass
        time.sleep(0.02)


def report_load(load: Load, kills: int, writers: int, missing: int, recoveries: list[float]) -> None:
    total = sum(load.statuses.values())
    print(f"  {kills} SIGKILLs of the embedded Postgres under {writers} writers ({total} requests):")
    print(f"    acknowledged writes {len(load.acknowledged)}, lost {missing}")
    print("    answers: " + ", ".join(f"{k} {v}" for k, v in sorted(load.statuses.items())))
    print(f"    slowest answer {load.slowest_s:.2f} s (a request never waits out a 30 s pool timeout)")
    print(
        f"    recovery (kill to first healthy answer): median {statistics.median(recoveries):.2f} s, "
        f"max {max(recoveries):.2f} s, all: {', '.join(f'{r:.2f}' for r in recoveries)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--serve-rounds", type=int, default=10)
    parser.add_argument("--pg-kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    started = time.monotonic()
    in_process(args.runs, args.seed).report("in-process, killed at a random step boundary")
    print(f"  ({time.monotonic() - started:.0f} s)")
    started = time.monotonic()
    serve_kills(args.serve_rounds, args.seed).report(f"kill -9 of o serve, {args.serve_rounds} rounds")
    print(f"  ({time.monotonic() - started:.0f} s)")
    postgres_kills(args.pg_kills)


if __name__ == "__main__":
    main()
