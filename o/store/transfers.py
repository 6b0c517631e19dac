"""SQL for upload sessions and exports (``transfers``): a payload's bytes put straight into the blob store, then the
work its "complete" starts. A bundle import is a leased job: :func:`claim` takes it (SKIP LOCKED, a
lease that a crashed worker's job outlives), :func:`lock_running` holds its row for the length of each
chunk's transaction, which ends with :func:`save_progress` (the cursor the next chunk starts from) or
:func:`finish` (completed) — so a chunk committed once is never applied again, and one that did not
commit left nothing."""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from o.store.db import Conn

UNFINISHED = ("queued", "running")


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    created = conn.execute(
        """INSERT INTO transfers (id, organization_id, kind, size, blob_key, token_sha256, params, expires_at)
           VALUES (%(id)s, %(organization_id)s, %(kind)s, %(size)s, %(blob_key)s, %(token_sha256)s, %(params)s,
                   now() + make_interval(secs => %(expires_s)s))
           RETURNING *""",
        {**row, "params": Jsonb(row.get("params") or {})},
    ).fetchone()
    assert created is not None
    return created


def get(conn: Conn, organization_id: str, upload_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = " FOR UPDATE" if for_update else ""
    return conn.execute(
        "SELECT *, expires_at < now() AS expired FROM transfers WHERE id = %s AND organization_id = %s" + lock,
        (upload_id, organization_id),
    ).fetchone()


def by_token(conn: Conn, upload_id: str, token_sha256: str) -> dict[str, Any] | None:
    """The upload O's own PUT URL names (its secret's hash must match), whoever sends the bytes."""
    return conn.execute(
        "SELECT *, expires_at < now() AS expired FROM transfers WHERE id = %s AND token_sha256 = %s",
        (upload_id, token_sha256),
    ).fetchone()


def queue(conn: Conn, upload_id: str) -> dict[str, Any]:
    row = conn.execute(
        "UPDATE transfers SET status = 'queued', updated_at = now() WHERE id = %s RETURNING *", (upload_id,)
    ).fetchone()
    assert row is not None
    return row


def claim(
    conn: Conn, lease_s: float, upload_id: str | None = None, *, quiet_s: float | None = None
) -> dict[str, Any] | None:
    """Take a queued (or abandoned running) job whose lease is free — ``upload_id`` if given — for
    ``lease_s``, counting the attempt; None if there is none to take. With ``quiet_s``, only a job
    nothing has written for that long (no run is at it, nor about to take it)."""
    quiet = " AND updated_at < now() - make_interval(secs => %s)" if quiet_s is not None else ""
    only = " AND id = %s" if upload_id else ""
    found = conn.execute(
        """SELECT id FROM transfers WHERE status IN ('queued', 'running')
             AND (claimed_until IS NULL OR claimed_until < now())"""
        + quiet
        + only
        + " ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        ((quiet_s,) if quiet_s is not None else ()) + ((upload_id,) if upload_id else ()),
    ).fetchone()
    if found is None:
        return None
    return conn.execute(
        """UPDATE transfers SET status = 'running', attempts = attempts + 1, claim_id = gen_random_uuid()::text,
                  claimed_until = now() + make_interval(secs => %s), updated_at = now()
           WHERE id = %s RETURNING *""",
        (lease_s, found["id"]),
    ).fetchone()


def lock_running(conn: Conn, upload_id: str, claim_id: str) -> bool:
    """Whether the job is still running under ``claim_id``; holds its row until the transaction ends
    (a second worker's claim waits, then finds it completed)."""
    row = conn.execute(
        "SELECT 1 FROM transfers WHERE id = %s AND claim_id = %s AND status = 'running' FOR UPDATE",
        (upload_id, claim_id),
    ).fetchone()
    return row is not None


def finish(conn: Conn, upload_id: str, result: dict[str, Any]) -> dict[str, Any]:
    row = conn.execute(
        """UPDATE transfers SET status = 'completed', result = %s, error_message = NULL, claimed_until = NULL,
                  updated_at = now() WHERE id = %s RETURNING *""",
        (Jsonb(result), upload_id),
    ).fetchone()
    assert row is not None
    return row


def fail(conn: Conn, upload_id: str, message: str) -> None:
    conn.execute(
        """UPDATE transfers SET status = 'error', error_message = %s, claimed_until = NULL, updated_at = now()
           WHERE id = %s AND status <> 'completed'""",
        (message, upload_id),
    )


def release(conn: Conn, upload_id: str, claim_id: str) -> None:
    """Give a job back after a transient failure: queued again, free to be claimed at once."""
    conn.execute(
        """UPDATE transfers SET status = 'queued', claim_id = NULL, claimed_until = NULL, updated_at = now()
           WHERE id = %s AND claim_id = %s AND status = 'running'""",
        (upload_id, claim_id),
    )


def save_progress(conn: Conn, upload_id: str, progress: dict[str, Any], renew_s: float | None) -> None:
    """Where the import is, stored with the chunk it follows; with ``renew_s``, the lease runs on from now."""
    conn.execute(
        """UPDATE transfers SET progress = %s, updated_at = now(),
                  claimed_until = coalesce(now() + make_interval(secs => %s), claimed_until)
           WHERE id = %s""",
        (Jsonb(progress), renew_s, upload_id),
    )


def hand_off(conn: Conn, upload_id: str, claim_id: str) -> None:
    """Give a job that ran out of time back, queued for the next run: it made progress, so its count
    of failed attempts starts again."""
    conn.execute(
        """UPDATE transfers SET status = 'queued', attempts = 0, claim_id = NULL, claimed_until = NULL,
                  updated_at = now() WHERE id = %s AND claim_id = %s AND status = 'running'""",
        (upload_id, claim_id),
    )


def progress(conn: Conn, upload_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT progress FROM transfers WHERE id = %s", (upload_id,)).fetchone()
    return None if row is None else row["progress"]


def status(conn: Conn, upload_id: str) -> str | None:
    row = conn.execute("SELECT status FROM transfers WHERE id = %s", (upload_id,)).fetchone()
    return None if row is None else str(row["status"])
