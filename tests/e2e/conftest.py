"""A real `o serve` process on a free port with its own embedded Postgres."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from o.store.embedded import cluster_processes
from tests.conftest import postgres_data_dir


@dataclass
class Server:
    url: str
    data_dir: Path

    def new_key(self, org: str = "default") -> str:
        out = subprocess.run(
            [sys.executable, "-m", "o.cli", "keys", "create", "--org", org, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Data dirs whose `o serve` was killed: their embedded Postgres outlives it, as after a real crash.
# The next start_serve on the dir adopts it; else it is stopped when the test ends.
_orphaned: set[Path] = set()


@dataclass
class Process:
    """One `o serve` process; ``kill()`` ends it the hard way (no cleanup, as a crash would)."""

    proc: subprocess.Popen[str]
    server: Server
    log: Any

    def tail(self, lines: int = 40) -> str:
        """The end of the server's log, for a failing assertion's message."""
        self.log.flush()
        return "\n".join(Path(self.log.name).read_text().splitlines()[-lines:])

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=20)
        self.log.close()
        _orphaned.add(self.server.data_dir)

    def stop(self) -> None:
        if self.proc.poll() is not None:  # stopped already
            self.log.close()
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def postgres_of(data_dir: Path) -> list[psutil.Process]:
    """The running processes of the embedded Postgres in ``data_dir``."""
    return cluster_processes(data_dir / "pgdata")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data dir for one test's `o serve` (see tests.conftest.postgres_data_dir), removed afterwards."""
    path = postgres_data_dir("o-e2e-")
    yield path
    if path not in _orphaned:  # a server the test killed left its Postgres: stopped below, then removed
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(autouse=True)
def _stop_orphaned_postgres() -> Iterator[None]:
    yield
    for path in list(_orphaned):
        for proc in postgres_of(path):
            proc.kill()
        _orphaned.discard(path)
        if path.name.startswith("o-e2e-"):  # made by the data_dir fixture
            shutil.rmtree(path, ignore_errors=True)


def start_serve(data_dir: Path, extra_env: dict[str, str] | None = None, port: int | None = None) -> Process:
    """`o serve` on ``data_dir``, on ``port`` (default: a free one), once it answers its health check."""
    _orphaned.discard(data_dir)
    port = port or _free_port()
    env = {k: v for k, v in os.environ.items() if k != "O_DATABASE_URL"}
    # an operator who lets agents name the test's model servers on 127.0.0.1
    env["O_LLM_ALLOWED_ENDPOINTS"] = "127.0.0.1"
    env.update(extra_env or {})
    # The log goes to a file: an unread pipe would fill up and stall the server.
    log_path = data_dir / f"serve-{port}.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "o.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"o serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(url + "/v1/health/", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        raise RuntimeError("o serve did not become healthy within 60 s")
    return Process(proc, Server(url=url, data_dir=data_dir), log)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    path = postgres_data_dir("o-e2e-")
    process = start_serve(path, {"O_SLEEPTIME": "false"})
    yield process.server
    process.stop()
    shutil.rmtree(path, ignore_errors=True)
