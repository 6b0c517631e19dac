"""Shared fixtures: one real embedded Postgres with pgvector for the whole session.

Set O_TEST_DATABASE_URL to run the suite against another Postgres instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    external = os.environ.get("O_TEST_DATABASE_URL")
    if external:
        migrate(external)
        yield external
        return
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="o-test-")), cleanup_mode="delete")
    migrate(server.url)
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def db(pg_url: str) -> Iterator[Database]:
    database = Database(pg_url, min_size=1, max_size=8).open()
    yield database
    database.close()
