"""`o serve` with several worker processes: one database, shared state, and no worker outlives
a parent killed the hard way (it would keep the port, and the next `o serve` could not bind it)."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx

from tests.e2e.conftest import start_serve


def _workers(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # a zombie holds no socket


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_two_workers_share_one_database_and_die_with_the_parent(data_dir: Path) -> None:
    process = start_serve(data_dir, {"O_SLEEPTIME": "false", "O_WORKERS": "2"})
    try:
        workers = _workers(process.proc.pid)
        assert len(workers) == 2
        key = process.server.new_key()
        with httpx.Client(base_url=process.server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10) as http:
            agent = http.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "v0"}]}).json()
            # Fresh connections spread over both workers; each edit is seen by the next read, whoever serves it.
            for i in range(1, 11):
                with httpx.Client(base_url=process.server.url, headers=http.headers, timeout=10) as fresh:
                    r = fresh.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": f"v{i}"})
                    assert r.status_code == 200, r.text
                assert http.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"] == f"v{i}"
            assert http.get("/v1/agents/agent-00000000-0000-0000-0000-000000000000/messages").status_code == 404
    except BaseException:
        process.stop()
        raise
    process.kill()

    port = urlparse(process.server.url).port
    assert port is not None
    deadline = time.monotonic() + 10
    while not (all(_gone(w) for w in workers) and _port_free(port)):
        assert time.monotonic() < deadline, "a worker outlived its killed parent"
        time.sleep(0.1)
