"""The database role the application connects as: rows, not schema.

Migrations run as the owner (the RDS master user, or whoever runs ``o migrate``); the functions that
serve traffic connect as an app role that may read and write the rows of O's tables and use their
sequences, and nothing else: no DDL (it owns nothing, and since Postgres 15 ``public`` grants no
CREATE to PUBLIC), no TRUNCATE, no writes to ``schema_migrations``. A leaked app connection cannot
drop a table or change the schema.

:func:`ensure_app_role` is idempotent and runs after every migration, inside the migrator's lock, so the
tables a new migration adds are granted before new code uses them. On RDS the role is also made a
member of ``rds_iam``, which lets it log in with an IAM token (and only so); where that role does not
exist (the embedded Postgres, any other server) this is skipped.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

# What the application does with rows; tables are granted in full, schema_migrations read-only.
TABLE_RIGHTS = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_RIGHTS = ("USAGE", "SELECT")
IAM_ROLE = "rds_iam"


def ensure_app_role(conn: psycopg.Connection[Any], role: str) -> None:
    """Create ``role`` (LOGIN, no password) if it is missing and grant it the application's rights on
    every table and sequence of ``public``. Needs CREATEROLE (the RDS master user has it)."""
    name = sql.Identifier(role)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
    if not exists:
        try:
            with conn.transaction():
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(name))
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
            pass  # another migrator created it meanwhile
    with conn.transaction():
        database = sql.Identifier(str(_one(conn, "SELECT current_database()")))
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, name))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name))
        tables = sql.SQL(", ").join(sql.SQL(right) for right in TABLE_RIGHTS)
        conn.execute(sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA public TO {}").format(tables, name))
        conn.execute(sql.SQL("REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM {}").format(name))
        sequences = sql.SQL(", ").join(sql.SQL(right) for right in SEQUENCE_RIGHTS)
        conn.execute(sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA public TO {}").format(sequences, name))
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (IAM_ROLE,)).fetchone():
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(IAM_ROLE), name))


def _one(conn: psycopg.Connection[Any], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]
