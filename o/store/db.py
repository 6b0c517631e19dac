"""One connection pool per process, shared by local mode and Lambda.

Locally the pool holds several connections for the server's worker threads; in Lambda
it holds one (module scope, reused across invocations), opened with prepared
statements disabled so RDS Proxy can multiplex it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

Conn = psycopg.Connection[dict[str, Any]]


class Database:
    """A pool of psycopg connections that return rows as dicts."""

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        prepared_statements: bool = True,
    ) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"row_factory": dict_row, "autocommit": False}
        if not prepared_statements:
            kwargs["prepare_threshold"] = None
        self._pool: ConnectionPool[Conn] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs=kwargs,
            configure=_configure,
            check=ConnectionPool.check_connection if max_size == 1 else None,
            open=False,
            name="o",
        )

    def open(self, wait_seconds: float = 30.0) -> Database:
        self._pool.open(wait=True, timeout=wait_seconds)
        return self

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def transaction(self) -> Iterator[Conn]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        with self._pool.connection() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Conn]:
        """A connection in autocommit for a read of a statement or two: no BEGIN and no COMMIT
        round trip (together a third of a GET's time under load). Only for reads that need no single
        snapshot across statements; anything that writes uses :meth:`transaction`."""
        with self._pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                if not conn.closed:
                    conn.autocommit = False

    def ping(self) -> None:
        """One statement's round trip to the server; raises when it cannot be reached."""
        with self.read() as conn:
            conn.execute("SELECT 1")

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        """Alias of :meth:`transaction`; every borrowed connection is one transaction."""
        with self._pool.connection() as conn:
            yield conn


def _configure(conn: Conn) -> None:
    register_vector(conn)
    # The pool calls configure outside a transaction; leave none open.
    conn.commit()


def connection_limit(conn: Conn) -> int:
    """How many connections the server accepts from ordinary users."""
    row = conn.execute(
        """SELECT current_setting('max_connections')::int
                  - current_setting('superuser_reserved_connections')::int AS n"""
    ).fetchone()
    assert row is not None
    return int(row["n"])
