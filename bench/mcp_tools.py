"""MCP tool-call latency and O's overhead on it, over stdio and streamable HTTP.

A real MCP server (tests/servers/mcp_server.py, the official SDK's MCPServer) answers ``add``; the
calls go through O's pooled client (o/tools/mcp/pool.py) on a real Postgres (embedded, or
O_DATABASE_URL). Two figures per transport:

- ``SDK round trip``: ``McpPool.call_tool`` alone, the MCP SDK's request over the pooled connection
  (the server's own time included);
- ``O tool call``: ``McpServers.call``, what the agent loop runs for an MCP tool: the server's row
  read, its secrets opened, the pooled call, the result turned into the model's text;

and the overhead, their difference (medians). Connecting is paid once per server and pool, so it is
reported apart (first call).

    python bench/mcp_tools.py [--calls 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from o.net.outbound import OutboundPolicy
from o.store import orgs
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate
from o.tools.mcp.pool import McpPool
from o.tools.mcp.servers import McpLimits, McpServers, ServerConfig
from tests.servers.mcp_server import HttpMcpServer, stdio_command
from tests.wiring import SECRETS


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def measure(servers: McpServers, org: str, name: str, config: ServerConfig, calls: int) -> list[str]:
    started = time.perf_counter()
    created = servers.create(org, name, config)
    connect_ms = (time.perf_counter() - started) * 1000
    tool = next(t for t in servers.tools(org, created["id"]) if t["name"] == "add")
    spec = servers.spec_for(created["id"], servers.config_of(created))
    args = {"a": 1, "b": 2}
    for _ in range(20):  # warm up
        assert servers.call(tool, args).func_return == "3"
    sdk = timed(lambda: servers.pool.call_tool(spec, "add", args, 10), calls)
    full = timed(lambda: servers.call(tool, args), calls)
    rows = [f"{name:<16} create (connect + list + store tools): {connect_ms:8.1f} ms"]
    for label, values in (("SDK round trip", sdk), ("O tool call", full)):
        rows.append(
            f"{name:<16} {label:<16} p50 {pct(values, 50):7.3f} ms  p99 {pct(values, 99):7.3f} ms  "
            f"mean {statistics.fmean(values):7.3f} ms"
        )
    overhead = [f - s for f, s in zip(sorted(full), sorted(sdk), strict=True)]
    rows.append(
        f"{name:<16} {'O overhead':<16} p50 {pct(overhead, 50):7.3f} ms  p99 {pct(overhead, 99):7.3f} ms"
        "  (percentile of the full call minus the same percentile of the SDK round trip)"
    )
    servers.delete(org, created["id"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    url = os.environ.get("O_DATABASE_URL")
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-bench-")), cleanup_mode="delete")
        url = embedded.url
    migrate(url)
    db = Database(url, min_size=1, max_size=2).open()
    policy = OutboundPolicy.allowing([], allow_loopback=True)
    servers = McpServers(db, SECRETS, McpPool(policy), policy, McpLimits(stdio_allowed=True))
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"bench-{uuid.uuid4()}")["id"]
    command, cmd_args = stdio_command()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"MCP tool call `add`, {args.calls} calls per figure, {os.cpu_count()} CPUs, load average {load}")
    try:
        for line in measure(
            servers, org, "stdio", ServerConfig("stdio", command=command, args=tuple(cmd_args)), args.calls
        ):
            print(line)
        with HttpMcpServer() as http:
            config = ServerConfig("streamable_http", server_url=http.url)
            for line in measure(servers, org, "streamable_http", config, args.calls):
                print(line)
    finally:
        servers.pool.close()
        db.close()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    main()
