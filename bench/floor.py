"""O against the physical floor: the same operations served by a minimal ASGI app that does one SQL
statement per request, on the same Postgres, with the same number of worker processes and the same
load generator, in interleaved rounds. Prints, per operation, O/floor ratios of requests/s, p50, p99 and
process CPU per request (from /proc of each server's processes), and the resident memory of each
`o serve` worker under load.

The floor: uvicorn + a raw ASGI callable + a psycopg async pool; each request is ONE statement that
checks the API key (its sha256, unrevoked) and returns the rows as Postgres's own ``row_to_json`` /
``json_agg``. That is what any server must do at least: authenticate and fetch in one round trip.

The load generator is ``wrk`` (C, epoll; ``apt-get install wrk``), not a Python client: a Python
client saturates a core of this 2-core machine and measures itself. ``oha`` (crates.io) was the first
choice; crates.io is not reachable from these machines, and wrk is in Debian's archive. Without wrk the
bench prints why it skipped and exits 0.

    python bench/floor.py [--rounds 3] [--seconds 5] [--connections 16] [--workers N]

The machine is shared: compare ratios from one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parents[1]

# -- the floor: a raw ASGI app (imported by uvicorn's workers as ``floor:floor_app``) -----------------

_AUTH = "(SELECT organization_id FROM api_keys WHERE key_hash = %(key)s AND revoked_at IS NULL)"
# what an agent is shown with (as O's GET agent: its blocks, its tools with their schemas, its tool
# variables' names, its identities), so both servers move the same data out of Postgres
_RELATED = """coalesce((SELECT json_agg(b.* ORDER BY ab.position, b.created_at)
               FROM agent_blocks ab JOIN blocks b ON b.id = ab.block_id WHERE ab.agent_id = a.id), '[]') AS blocks,
    coalesce((SELECT json_agg(json_build_object('id', t.id, 'name', t.name, 'description', t.description,
               'tool_type', t.tool_type, 'json_schema', t.json_schema, 'tags', t.tags) ORDER BY t.name)
               FROM agent_tools at JOIN tools t ON t.id = at.tool_id WHERE at.agent_id = a.id), '[]') AS tools,
    coalesce((SELECT json_agg(e.key ORDER BY e.key) FROM agent_tool_env e WHERE e.agent_id = a.id), '[]') AS env,
    coalesce((SELECT json_agg(ia.identity_id) FROM identity_agents ia WHERE ia.agent_id = a.id), '[]') AS identities"""
FLOOR_SQL = {
    "agent": f"""SELECT row_to_json(x)::text AS body FROM (SELECT a.*, {_RELATED} FROM agents a
                 WHERE a.id = %(agent)s AND a.organization_id = {_AUTH}) x""",
    "agents": f"""SELECT coalesce(json_agg(x), '[]')::text AS body FROM (SELECT a.*, {_RELATED}
                  FROM agents a WHERE a.organization_id = {_AUTH}
                  ORDER BY a.created_at DESC, a.id DESC LIMIT %(limit)s) x""",
    "messages": f"""SELECT coalesce(json_agg(x), '[]')::text AS body FROM (SELECT m.seq, m.id, m.agent_id,
                    m.role, m.content, m.text, m.name, m.tool_calls, m.tool_call_id, m.tool_returns, m.step_id,
                    m.run_id, m.otid, m.sender_id, m.in_context, m.metadata, m.conversation_id, m.created_at
                    FROM messages m WHERE m.agent_id = %(agent)s AND m.organization_id = {_AUTH}
                    AND m.conversation_id IS NULL ORDER BY m.seq DESC LIMIT %(limit)s) x""",
    "block": f"""UPDATE blocks b SET value = %(value)s, updated_at = now(), version = b.version + 1
                 FROM agent_blocks ab, agents a
                 WHERE ab.agent_id = %(agent)s AND ab.label = %(label)s AND b.id = ab.block_id
                   AND a.id = ab.agent_id AND a.organization_id = {_AUTH}
                   AND char_length(%(value)s) <= b.char_limit
                 RETURNING row_to_json(b)::text AS body""",
}
_ROUTES = [
    (re.compile(r"^/v1/agents/?$"), "GET", "agents"),
    (re.compile(r"^/v1/agents/(?P<agent>[^/]+)$"), "GET", "agent"),
    (re.compile(r"^/v1/agents/(?P<agent>[^/]+)/messages$"), "GET", "messages"),
    (re.compile(r"^/v1/agents/(?P<agent>[^/]+)/core-memory/blocks/(?P<label>[^/]+)$"), "PATCH", "block"),
]


class FloorApp:
    """One statement per request through an async pool; nothing else."""

    def __init__(self) -> None:
        self.pool: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        status, body = await self._answer(scope, receive)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        from psycopg_pool import AsyncConnectionPool

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                size = int(os.environ.get("O_POOL_MAX", "10"))
                url = os.environ["FLOOR_DATABASE_URL"]
                self.pool = AsyncConnectionPool(url, min_size=size, max_size=size, open=False)
                await self.pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _answer(self, scope: dict, receive: Any) -> tuple[int, bytes]:
        for pattern, method, name in _ROUTES:  # noqa: B007 (the loop finds it)
            match = pattern.match(scope["path"])
            if match and scope["method"] == method:
                break
        else:
            return 404, b'{"detail":"not found"}'
        auth = dict(scope["headers"]).get(b"authorization", b"")
        params: dict[str, Any] = {**match.groupdict(), "key": hashlib.sha256(auth[7:]).hexdigest()}
        params["limit"] = int(parse_qs(scope["query_string"].decode()).get("limit", ["50"])[0])
        if method == "PATCH":
            chunks = []
            while True:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    break
            params["value"] = json.loads(b"".join(chunks))["value"]
        async with self.pool.connection() as conn:
            cur = await conn.execute(FLOOR_SQL[name], params)
            row = await cur.fetchone()
        return (404, b'{"detail":"not found"}') if row is None else (200, row[0].encode())


floor_app = FloorApp()

# -- the bench -------------------------------------------------------------------------------------------

WRK_PATCH = """wrk.method = "PATCH"
wrk.body = '{"value": "Name: Ada L."}'
wrk.headers["content-type"] = "application/json"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    out = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in children:
        out.extend(process_tree(int(child)))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (all their threads)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Server:
    """A server process (O or the floor) on its own port; ``serving`` are the pids that answer requests."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.port = free_port()
        # open as long as the server runs
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"floor-{name}-", suffix=".log", delete=False)  # noqa: SIM115
        env = {**env, "O_PORT": str(self.port)}
        self.proc = subprocess.Popen(
            [*command, "--port", str(self.port)], env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.base = f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/v1/health/") -> None:
        import httpx

        for _ in range(600):
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                httpx.get(self.base + path, timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SystemExit(f"{self.name} did not start: {Path(self.log.name).read_text()[-2000:]}")

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid)

    def serving(self) -> list[int]:
        """The processes that serve requests: the workers under a multi-process uvicorn, else the server."""
        tree = self.pids()
        workers = [p for p in tree[1:] if "resource_tracker" not in _cmdline(p)]
        return workers or tree[:1]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self.log.name)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _seconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[unit]


def run_wrk(url: str, key: str, script: str | None, seconds: float, connections: int) -> dict[str, float]:
    command = ["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency"]
    command += ["-H", f"Authorization: Bearer {key}"]
    if script:
        command += ["-s", script]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    figures: dict[str, float] = {"errors": 0.0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "99%"):
            figures[parts[0]] = _seconds(parts[1])
        elif line.startswith("Requests/sec:"):
            figures["rps"] = float(parts[1])
        elif "Non-2xx" in line or "Socket errors" in line:
            figures["errors"] += sum(int(n) for n in re.findall(r"\d+", line.split(":", 1)[1]))
        elif "requests in" in line:
            figures["requests"] = float(parts[0])
    return figures


def measure(server: Server, url: str, key: str, script: str | None, seconds: float, connections: int) -> dict:
    run_wrk(url, key, script, 1, connections)  # warm-up: pools grow, caches fill
    pids = server.pids()
    peak: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.25):
            for pid in server.serving():
                peak[pid] = max(peak.get(pid, 0.0), rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu0 = cpu_seconds(pids)
    figures = run_wrk(url, key, script, seconds, connections)
    cpu1 = cpu_seconds(pids)
    done.set()
    sampler.join()
    figures["cpu_ms"] = (cpu1 - cpu0) * 1000 / max(1.0, figures.get("requests", 0.0))
    figures["rss"] = max(peak.values()) if peak else 0.0
    return figures


def seed(o: Server, db_url: str, env: dict[str, str], agents: int, messages: int) -> tuple[str, str]:
    import httpx

    key = subprocess.run(
        [sys.executable, "-m", "o.cli", "keys", "create", "--org", f"floor-{uuid.uuid4()}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "I am O."}]
    with httpx.Client(base_url=o.base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        ids = [
            client.post("/v1/agents/", json={"name": f"floor-{i}", "memory_blocks": blocks}).raise_for_status()
            for i in range(agents)
        ]
    first = ids[0].json()["id"]
    sys.path.insert(0, str(ROOT / "bench"))
    from api import seed_messages  # type: ignore[import-not-found]

    seed_messages(db_url, first, messages)
    return key, first


def operations(agent_id: str, patch_script: str) -> dict[str, tuple[str, str | None]]:
    return {
        "GET agent": (f"/v1/agents/{agent_id}", None),
        "PATCH block value": (f"/v1/agents/{agent_id}/core-memory/blocks/human", patch_script),
        "GET messages (50)": (f"/v1/agents/{agent_id}/messages?limit=50", None),
        "list agents (50)": ("/v1/agents/?limit=50", None),
    }


def worker_count(o: Server) -> int:
    banner = Path(o.log.name).read_text()
    found = re.search(r"(\d+) worker process", banner)
    return int(found.group(1)) if found else 1


def summarize(results: dict[str, dict[str, list[dict]]], rounds: int) -> None:
    def med(runs: list[dict], field: str) -> float:
        return statistics.median(r.get(field, float("nan")) for r in runs)

    print(f"\nmedians of {rounds} interleaved rounds (O / floor):")
    header = f"{'operation':<20} {'req/s O':>8} {'floor':>7} {'ratio':>6} | {'p50 O':>7} {'floor':>7} {'ratio':>6} | "
    header += f"{'p99 O':>7} {'floor':>7} {'ratio':>6} | {'CPU/req O':>9} {'floor':>7} {'ratio':>6} | {'errors':>6}"
    print(header)
    for op, by in results.items():
        o, f = by["O"], by["floor"]
        rps, frps = med(o, "rps"), med(f, "rps")
        p50, fp50 = med(o, "50%") * 1000, med(f, "50%") * 1000
        p99, fp99 = med(o, "99%") * 1000, med(f, "99%") * 1000
        cpu, fcpu = med(o, "cpu_ms"), med(f, "cpu_ms")
        errors = int(sum(r["errors"] for r in o + f))
        print(
            f"{op:<20} {rps:8.0f} {frps:7.0f} {rps / frps:6.2f} | {p50:5.1f}ms {fp50:5.1f}ms {p50 / fp50:6.2f} | "
            f"{p99:5.1f}ms {fp99:5.1f}ms {p99 / fp99:6.2f} | {cpu:7.2f}ms {fcpu:5.2f}ms {cpu / fcpu:6.2f} | {errors:6d}"
        )
    peak = max(r["rss"] for by in results.values() for r in by["O"])
    print(f"\nRSS per `o serve` worker under load (peak over all rounds): {peak:.0f} MB (target < 150 MB)")
    print("goal: req/s ratio >= 0.80, p99 ratio <= 2.0, CPU/request ratio <= 1.5")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, help="O_WORKERS for `o serve` (default: its own default)")
    parser.add_argument("--agents", type=int, default=60, help="agents seeded (list agents pages 50)")
    parser.add_argument("--messages", type=int, default=200, help="messages seeded on the measured agent")
    parser.add_argument("--only", action="append", help="run only operations whose name contains this")
    parser.add_argument("--hold", action="store_true", help="keep the servers up after the run (profiling)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench/floor.py skipped: the load generator `wrk` is not installed (apt-get install wrk)")
        return 0
    sys.path.insert(0, str(ROOT))
    from o.store.embedded import EmbeddedPostgres
    from o.store.migrate import migrate

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; load generator: wrk")
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-floor-")), cleanup_mode="delete")
    servers: list[Server] = []
    try:
        migrate(pg.url)
        env = {**os.environ, "O_DATABASE_URL": pg.url, "O_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
        env.pop("O_WORKERS", None)
        if args.workers:
            env["O_WORKERS"] = str(args.workers)
        o = Server("O", [sys.executable, "-m", "o.cli", "serve"], env, ROOT)
        servers.append(o)
        o.wait_ready()
        workers = worker_count(o)
        floor_env = {**env, "FLOOR_DATABASE_URL": pg.url}
        floor_cmd = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "floor:floor_app"]
        floor_cmd += ["--log-level", "warning", "--no-access-log", "--workers", str(workers)]
        floor = Server("floor", floor_cmd, floor_env, ROOT)
        servers.append(floor)
        key, agent_id = seed(o, pg.url, env, args.agents, args.messages)
        floor.wait_ready(f"/v1/agents/{agent_id}")
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
            script.write(WRK_PATCH)
        ops = {
            name: spec
            for name, spec in operations(agent_id, script.name).items()
            if not args.only or any(s.lower() in name.lower() for s in args.only)
        }
        print(
            f"{workers} worker process(es) each; wrk -t2 -c{args.connections}, {args.seconds:g} s per measurement "
            f"after a 1 s warm-up; {args.rounds} rounds, O and floor alternating; O with O_LOG_LEVEL=WARNING "
            "(no access log line per request: the floor writes none either)"
        )
        results: dict[str, dict[str, list[dict]]] = {op: {"O": [], "floor": []} for op in ops}
        for round_no in range(args.rounds):
            for op, (path, patch) in ops.items():
                order = (o, floor) if round_no % 2 == 0 else (floor, o)
                for server in order:
                    figures = measure(server, server.base + path, key, patch, args.seconds, args.connections)
                    results[op][server.name].append(figures)
                    print(
                        f"  round {round_no + 1} {op:<18} {server.name:<5} {figures.get('rps', 0):7.0f} req/s  "
                        f"p50 {figures.get('50%', 0) * 1000:6.1f} ms  p99 {figures.get('99%', 0) * 1000:6.1f} ms  "
                        f"CPU {figures['cpu_ms']:.2f} ms/req  errors {int(figures['errors'])}",
                        flush=True,
                    )
        summarize(results, args.rounds)
        os.unlink(script.name)
        if args.hold:
            print(f"holding: O {o.base} (pids {o.serving()}), floor {floor.base}; key {key}; agent {agent_id}")
            input("press Enter to stop")
    finally:
        for server in servers:
            server.stop()
        pg.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
