"""Whether a configured database answers, told in one line a person can act on: where (host and port,
never the password) and why not (refused, unknown host, timeout, authentication)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from o.errors import OError

# libpq's "connection to server at "HOST" (ADDR), port N failed: " prefix: the cause is what follows
_PREFIX = re.compile(r"^(connection failed: )?(connection to server (at|on) .*?failed: )?")


class DatabaseUnreachable(OError):
    status_code = 503
    code = "database_unreachable"


def where(url: str) -> str:
    params = conninfo_to_dict(url)
    return f"{params.get('host') or 'localhost'}:{params.get('port') or 5432}"


def cause(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return _PREFIX.sub("", lines[0]) if lines else type(exc).__name__


def check_reachable(url: str, *, timeout_s: int = 5, name: str = "O_DATABASE_URL") -> None:
    """Connect once and hang up; raises :class:`DatabaseUnreachable` naming host, port and cause."""
    try:
        at = where(url)
    except psycopg.ProgrammingError as exc:
        raise DatabaseUnreachable(f"{name} is not a Postgres URL: {cause(exc)}") from None
    try:
        psycopg.connect(url, connect_timeout=timeout_s).close()
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable(f"cannot reach the database at {at} ({name}): {cause(exc)}") from None


def facts(conn: Any) -> dict[str, Any]:
    """What `o doctor` reports of a database: its server version and pgvector's (installed, or only
    available to install)."""
    row = conn.execute(
        """SELECT current_setting('server_version') AS server,
                  (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS installed,
                  (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS available"""
    ).fetchone()
    return dict(row) if row is not None else {}
