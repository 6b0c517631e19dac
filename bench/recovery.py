"""Crash recovery: how long O takes to carry on from durable state after a crash.

Three figures, against a real Postgres and a zero-latency local OpenAI-wire server:

- **replay of a committed phase** — a retried invocation (a Lambda retried by Step Functions after
  it died having committed): ``advance`` sees the phase is done and returns without calling the LLM;
- **resume of an interrupted run** — the process died between the LLM reply (committed) and the
  tool results; ``runner.resume_stale`` picks the run up and finishes it (tool phase, then the next
  step's zero-latency LLM call and its tools), LLM time excluded;
- **`o serve` restart** — ``kill -9`` of a running server, then a new one until ``/v1/health/``
  answers (the embedded Postgres survives the kill, as it would a crash of the API process).

    python bench/recovery.py [--runs 100]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.agent import lifecycle
from o.agent import runs as run_api
from o.agent.engine import Engine, llm_factory
from o.agent.prompt import PromptCache
from o.agent.runner import resume_stale
from o.agent.step import advance
from o.config import AgentSettings
from o.store import orgs
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, ms: list[float]) -> None:
    print(f"  {label:<44} p50 {statistics.median(ms):7.2f} ms   p95 {pct(ms, 0.95):7.2f} ms   (n={len(ms)})")


def reply(body: dict) -> Reply:
    # Remember, then answer: two steps, so a crash after step 1's LLM reply leaves work to resume.
    last = body["messages"][-1]
    if last.get("role") == "tool" and "core_memory_append" in str(body["messages"][-2]):
        return Reply(tool_calls=(ScriptedCall("send_message", {"message": "Noted."}),), usage=(400, 10))
    return Reply(
        tool_calls=(
            ScriptedCall("core_memory_append", {"label": "human", "content": " +", "request_heartbeat": True}),
        ),
        usage=(400, 10),
    )


def in_process(db: Database, server: OpenAIServer, runs: int) -> None:
    engine = Engine(
        db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, settings=AgentSettings(), prompts=PromptCache()
    )
    server.script.default = reply
    llm = {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": server.base_url,
        "context_window": 128000,
    }
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"bench-{uuid.uuid4()}")["id"]
    replays: list[float] = []
    resumes: list[float] = []
    for i in range(runs):
        if i % 10 == 0:
            with db.transaction() as conn:
                agent_id = lifecycle.create(
                    conn,
                    org,
                    lifecycle.AgentSpec(
                        name="recovery",
                        llm_config=llm,
                        memory_blocks=[{"label": "human", "value": "User.", "limit": 20000}],
                    ),
                ).agent["id"]
        with db.transaction() as conn:
            run = run_api.start(conn, org, agent_id, [run_api.InputMessage("user", f"note {i}")], {}).run
        deps = engine.deps()
        first = advance(deps, run.id, "step")  # the LLM reply is committed; then the process "dies"
        assert first.next == "tools", first
        t0 = time.perf_counter()
        again = advance(deps, run.id, "step")  # a retried invocation of the committed phase
        replays.append((time.perf_counter() - t0) * 1000)
        assert again.next == "tools", again
        calls_before = len(server.requests)
        t0 = time.perf_counter()
        finished = resume_stale(deps, idle_s=0)
        elapsed = (time.perf_counter() - t0) * 1000
        with db.transaction() as conn:
            llm_ms = sum(
                float(s["usage"].get("llm_ms", 0))
                for s in conn.execute("SELECT usage FROM steps WHERE run_id = %s AND step_index > 0", (run.id,))
            )
        assert [o.run_id for o in finished] == [run.id] and finished[0].next == "done", finished
        assert len(server.requests) == calls_before + 1  # only the next step's call, never a repeat
        resumes.append(elapsed - llm_ms)
    print(f"in-process (Postgres + zero-latency LLM server, {runs} interrupted runs):")
    line("replay of a committed phase (no LLM call)", replays)
    line("resume of a run interrupted after an LLM reply", resumes)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def restart(db_dir: Path, times: int) -> None:
    env = {**os.environ, "O_SLEEPTIME": "false", "O_LOG_LEVEL": "WARNING"}
    env.pop("O_DATABASE_URL", None)
    durations = []
    for _ in range(times + 1):
        port = free_port()
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "o.cli", "serve", "--data-dir", str(db_dir), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/health/", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.01)
        durations.append((time.perf_counter() - t0) * 1000)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    print(f"o serve after kill -9 (embedded Postgres left running), {times} restarts:")
    line("process start to first healthy response", durations[1:])  # the first start also creates the DB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-")), cleanup_mode="delete")
    try:
        migrate(pg.url)
        db = Database(pg.url, max_size=4).open()
        with OpenAIServer() as server:
            in_process(db, server, args.runs)
        db.close()
    finally:
        pg.stop()
    data_dir = Path(tempfile.mkdtemp(prefix="o-bench-serve-"))
    restart(data_dir, args.restarts)
    # The killed servers left their Postgres running: attach to it once more to stop and delete it.
    EmbeddedPostgres(data_dir, cleanup_mode="delete").stop()


if __name__ == "__main__":
    main()
