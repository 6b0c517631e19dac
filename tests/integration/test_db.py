"""The pool's two kinds of borrowing: a transaction, and an autocommit read that leaves no trace."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from psycopg import pq

from o.store.db import Conn, Database, begin_again


def test_read_runs_in_autocommit_and_returns_the_connection_as_it_was(pg_url: str) -> None:
    db = Database(pg_url, min_size=1, max_size=1).open()  # one connection: the same one comes back
    try:
        with db.read() as conn:
            conn.execute("SELECT 1").fetchone()
            assert conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.IDLE
        with db.transaction() as conn:
            conn.execute("SELECT 1").fetchone()
            assert not conn.autocommit and conn.info.transaction_status == pq.TransactionStatus.INTRANS
        # a failed read does not leave the connection in autocommit either
        try:
            with db.read() as conn:
                conn.execute("SELECT * FROM no_such_table")
        except Exception:
            pass
        with db.transaction() as conn:
            assert not conn.autocommit
    finally:
        db.close()


def test_a_transaction_opened_by_a_pipeline_commits_rolls_back_and_begins_again(pg_url: str) -> None:
    """``transaction_opened_by``: the BEGIN goes out with the first statements, everything after is in the
    same transaction (committed together or not at all), and ``begin_again`` discards what came before."""
    db = Database(pg_url, min_size=1, max_size=1).open()
    try:
        with db.transaction() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS opened_by (n int)")
            conn.execute("TRUNCATE opened_by")

        def insert(n: int) -> Callable[[Conn], Any]:
            return lambda conn: conn.execute("INSERT INTO opened_by VALUES (%s) RETURNING n", (n,))

        with db.transaction_opened_by(insert(1)) as (conn, cursor):
            assert cursor.fetchone() == {"n": 1}
            assert conn.info.transaction_status == pq.TransactionStatus.INTRANS
            conn.execute("INSERT INTO opened_by VALUES (2)")
        with pytest.raises(RuntimeError), db.transaction_opened_by(insert(3)) as (conn, _):
            conn.execute("INSERT INTO opened_by VALUES (4)")
            raise RuntimeError("the body failed: nothing of this transaction stays")
        with db.transaction_opened_by(insert(5)) as (conn, _):
            begin_again(conn)
            conn.execute("INSERT INTO opened_by VALUES (6)")
        with db.read() as conn:
            assert [r["n"] for r in conn.execute("SELECT n FROM opened_by ORDER BY n")] == [1, 2, 6]
        with db.transaction() as conn:  # the connection came back as it was
            assert not conn.autocommit
            conn.execute("DROP TABLE opened_by")
    finally:
        db.close()
