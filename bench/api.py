"""API latency and throughput for operations that do not wait on an LLM.

Prints p50/p99 latency and requests/s for GET agent, PATCH block and GET messages, both
in-process (the ASGI app called through Starlette's TestClient, no sockets) and over HTTP on
localhost against a real `o serve` process; then the API Lambda handler's import time and the
server's resident memory.

    python bench/api.py [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(label: str, latencies_s: list[float], wall_s: float) -> None:
    ms = [v * 1000 for v in latencies_s]
    print(
        f"  {label:<28} p50 {statistics.median(ms):6.2f} ms   p99 {percentile(ms, 99):6.2f} ms   "
        f"{len(ms) / wall_s:8.0f} req/s"
    )


def seed(request: Callable[..., httpx.Response]) -> tuple[str, str]:
    blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "O"}]
    agent = request("POST", "/v1/agents/", json={"name": "bench", "memory_blocks": blocks}).json()
    return agent["id"], agent["blocks"][0]["label"]


def operations(agent_id: str, label: str) -> dict[str, tuple[str, str, dict | None]]:
    return {
        "GET agent": ("GET", f"/v1/agents/{agent_id}", None),
        "PATCH block": ("PATCH", f"/v1/agents/{agent_id}/core-memory/blocks/{label}", {"value": "Name: Ada L."}),
        "GET messages": ("GET", f"/v1/agents/{agent_id}/messages?limit=50", None),
    }


def seed_messages(db_url: str, agent_id: str, n: int = 200) -> None:
    from o.ids import new_id
    from o.store import messages as message_store
    from o.store.db import Database

    db = Database(db_url, max_size=1).open()
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent_id,)).fetchone()
        message_store.insert_many(
            conn,
            [
                {
                    "id": new_id("message"),
                    "organization_id": org["organization_id"],
                    "agent_id": agent_id,
                    "role": "user" if i % 2 == 0 else "assistant",
                    "content": [{"type": "text", "text": f"message {i}"}],
                    "text": f"message {i}",
                }
                for i in range(n)
            ],
        )
        # As the run-end worker leaves a finished run's messages: embedded and indexed for search.
        conn.execute(
            """UPDATE messages SET embedding_dim = 384, embedding_model = 'bench',
                   embedding_384 = (SELECT array_agg(random())::vector(384) FROM generate_series(1, 384)),
                   search_tsv = to_tsvector('english', text), search_len = 2
               WHERE agent_id = %s""",
            (agent_id,),
        )
    db.close()


def in_process(db_url: str, requests: int) -> None:
    from fastapi.testclient import TestClient

    from o import runtime
    from o.config import settings_from
    from o.store import orgs
    from o.store.db import Database

    db = Database(db_url, max_size=4).open()
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"bench-{uuid.uuid4()}")
        _, key = orgs.create_api_key(conn, org["id"])
    # wired as `o serve` wires it, with the defaults of an empty environment
    settings = settings_from({})
    app = runtime.api_app(settings, runtime.api_services(settings, db))
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
        agent_id, label = seed(client.request)
        seed_messages(db_url, agent_id)
        print("in-process (ASGI app, no sockets, 1 caller):")
        for name, (method, path, body) in operations(agent_id, label).items():
            for _ in range(50):
                client.request(method, path, json=body)
            latencies = []
            start = time.perf_counter()
            for _ in range(requests):
                t0 = time.perf_counter()
                r = client.request(method, path, json=body)
                latencies.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
            report(name, latencies, time.perf_counter() - start)
    db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (`o serve --workers N` serves from child processes)."""
    out = [pid]
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        out.extend(process_tree(int(child)))
    return out


def memory_line(pid: int) -> str:
    sizes = [rss_mb(p) for p in process_tree(pid)]
    if len(sizes) == 1:
        return f"{sizes[0]:.0f} MB"
    each = ", ".join(f"{m:.0f}" for m in sizes)
    return f"{sum(sizes):.0f} MB in {len(sizes)} processes ({each} MB; the first is the parent)"


def over_http(db_url: str, requests: int, concurrency: int, workers: int | None) -> None:
    port = free_port()
    env = {**os.environ, "O_DATABASE_URL": db_url, "O_PORT": str(port), "O_LOG_LEVEL": "WARNING"}
    if workers is not None:
        env["O_WORKERS"] = str(workers)
    server = subprocess.Popen(
        [sys.executable, "-m", "o.cli", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(base + "/v1/health/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        key = subprocess.run(
            [sys.executable, "-m", "o.cli", "keys", "create", "--org", f"bench-{uuid.uuid4()}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=headers) as c:
            agent_id, label = seed(c.request)
        seed_messages(db_url, agent_id)
        procs = env.get("O_WORKERS", "default")
        print(f"over HTTP (o serve on localhost, workers={procs}, {concurrency} concurrent keep-alive clients):")
        for name, (method, path, body) in operations(agent_id, label).items():
            latencies, wall = concurrent_calls(base, headers, method, path, body, requests, concurrency)
            report(name, latencies, wall)
        if shutil.which("wrk"):
            wrk(base, key, agent_id, label)
        else:
            print("  (install wrk for a load generator that does not share the server's interpreter)")
        print(f"  o serve resident memory after the run: {memory_line(server.pid)}")
    finally:
        server.terminate()
        server.wait(timeout=20)


def concurrent_calls(
    base: str, headers: dict[str, str], method: str, path: str, body: dict | None, requests: int, concurrency: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // concurrency)

    def worker() -> None:
        mine = []
        with httpx.Client(base_url=base, headers=headers) as c:
            for _ in range(10):
                c.request(method, path, json=body)
            for _ in range(per_client):
                t0 = time.perf_counter()
                r = c.request(method, path, json=body)
                mine.append(time.perf_counter() - t0)
                assert r.status_code == 200, r.text
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - start


WRK_PATCH = """wrk.method = "PATCH"
wrk.body = '{"value": "Name: Ada L."}'
wrk.headers["content-type"] = "application/json"
"""


def wrk(base: str, key: str, agent_id: str, label: str, seconds: int = 8) -> None:
    """wrk (a C load generator) measures the server without a Python client competing for the CPU."""
    print(f"over HTTP with wrk (2 threads, 16 connections, {seconds} s each after a 2 s warm-up):")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_PATCH)
    targets = {
        "GET agent": ([], f"/v1/agents/{agent_id}"),
        "PATCH block": (["-s", script.name], f"/v1/agents/{agent_id}/core-memory/blocks/{label}"),
        "GET messages": ([], f"/v1/agents/{agent_id}/messages?limit=50"),
    }
    for name, (extra, path) in targets.items():
        command = ["wrk", "-t2", "-c16", "--latency", "-H", f"Authorization: Bearer {key}", *extra, base + path]
        # A discarded warm-up: each worker's pool grows to 16 callers one connection at a time, and
        # that first burst (hundreds of ms at p99 with several workers) is not the steady state.
        subprocess.run([*command, "-d2s"], capture_output=True, check=True)
        out = subprocess.run([*command, f"-d{seconds}s"], capture_output=True, text=True, check=True).stdout
        figures = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("50%", "99%"):
                figures[parts[0]] = parts[1]
            if line.startswith("Requests/sec:"):
                figures["rps"] = parts[1]
            if "Non-2xx" in line:
                figures["errors"] = parts[-1]
        errors = f"   non-2xx {figures['errors']}" if "errors" in figures else ""
        print(f"  {name:<28} p50 {figures.get('50%')}   p99 {figures.get('99%')}   {figures.get('rps')} req/s{errors}")
    os.unlink(script.name)


def handler_import(db_url: str) -> None:
    env = {**os.environ, "O_DATABASE_URL": db_url, "O_RUNTIME": "lambda", "POWERTOOLS_TRACE_DISABLED": "1"}
    code = (
        "import time, resource; t = time.perf_counter(); import functions.api.handler; "
        "print(f'{(time.perf_counter() - t) * 1000:.0f} ms, '"
        "f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB max RSS')"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(3)
    ]
    print("API Lambda handler cold import (module scope: app + one DB connection), 3 runs:")
    for r in runs:
        print("  " + r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, help="O_WORKERS for the served process (default: o serve's)")
    args = parser.parse_args()

    from o.store.embedded import EmbeddedPostgres
    from o.store.migrate import migrate

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-")), cleanup_mode="delete")
    try:
        migrate(pg.url)
        in_process(pg.url, args.requests)
        over_http(pg.url, args.requests, args.concurrency, args.workers)
        handler_import(pg.url)
    finally:
        pg.stop()
    # The machine is shared: a high figure here means other work competed with the run.
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
