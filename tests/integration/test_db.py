"""The pool's two kinds of borrowing: a transaction, and an autocommit read that leaves no trace."""

from __future__ import annotations

from psycopg import pq

from o.store.db import Database


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
