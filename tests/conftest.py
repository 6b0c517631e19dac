"""Shared fixtures: one real embedded Postgres with pgvector for the whole session.

Set O_TEST_DATABASE_URL to run the suite against another Postgres instead.

At the end of the session no Postgres process of the suite may be left running: every embedded
Postgres the suite started (its own, and each `o serve`'s under the session's temporary directory)
must have been stopped. One that is left fails the run, and is killed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate

# where this session's embedded Postgres clusters live (its own data dir, the session's basetemp)
_POSTGRES_ROOTS: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _session_roots(tmp_path_factory: pytest.TempPathFactory) -> None:
    _POSTGRES_ROOTS.append(tmp_path_factory.getbasetemp().resolve())


def postgres_data_dir(prefix: str = "o-test-") -> Path:
    """A new directory for an embedded Postgres, checked at the end of the session.

    Outside pytest's own temporary root on purpose: every pytest session that starts (another
    worker's, on a shared machine) resets that root to mode 0700, and the embedded Postgres runs as
    its own system user when the suite runs as root, so it could no longer reach its data dir there.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=prefix)).resolve()
    _POSTGRES_ROOTS.append(data_dir)
    return data_dir


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    external = os.environ.get("O_TEST_DATABASE_URL")
    if external:
        migrate(external)
        yield external
        return
    server = EmbeddedPostgres(postgres_data_dir(), cleanup_mode="delete")
    migrate(server.url)
    yield server.url
    server.stop()


@contextlib.contextmanager
def new_database(pg_url: str, prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the test server (as a fresh RDS instance's), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = pg_url.partition("?")
    try:
        yield base.rsplit("/", 1)[0] + "/" + name + ("?" + query if query else "")
    finally:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, min_size=1, max_size=8).open()
    yield database
    database.close()


def postgres_under(roots: list[Path]) -> list[psutil.Process]:
    """Live Postgres processes whose data directory (their working directory) is under one of ``roots``."""
    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != "postgres" or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            cwd = Path(proc.cwd())
        except psutil.Error:
            continue
        if any(cwd == root or root in cwd.parents for root in roots):
            found.append(proc)
    return found


def _cwd(proc: psutil.Process) -> str:
    try:
        return proc.cwd()
    except psutil.Error:
        return "?"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    del exitstatus
    # a server stopping right at the end gets a moment to finish
    deadline = time.monotonic() + 5
    while (left := postgres_under(_POSTGRES_ROOTS)) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not left:
        return
    where = sorted({_cwd(p) for p in left})
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = f"the test session left {len(left)} Postgres processes running (data dirs: {', '.join(where)})"
    if reporter is not None:
        reporter.write_line(f"FAILED: {message}", red=True, bold=True)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
