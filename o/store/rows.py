"""The INSERT and SET clauses every repository builds from a dict of column values.

JSON columns are wrapped in ``Jsonb`` (None stays SQL NULL); column names are quoted
identifiers, never interpolated text.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store.db import Conn


def value(column: str, raw: Any, json_columns: Collection[str]) -> Any:
    return Jsonb(raw) if column in json_columns and raw is not None else raw


def insert_statement(
    table: str, row: dict[str, Any], *, json_columns: Collection[str] = (), on_conflict: str = ""
) -> tuple[str, list[Any]]:
    """The INSERT of one row returning it, and its values (for a caller that sends several in one pipeline)."""
    cols = tuple(row)
    return _insert_sql(table, cols, on_conflict), [value(c, row[c], json_columns) for c in cols]


# Composed and rendered once per shape: building and rendering it was ~0.1 ms of CPU per INSERT, and a step
# makes the same few (its row, its messages) every time.
@functools.lru_cache(maxsize=512)
def _insert_sql(table: str, cols: tuple[str, ...], on_conflict: str) -> str:
    return (
        sql.SQL("INSERT INTO {table} ({cols}) VALUES ({vals}) {conflict} RETURNING *")
        .format(
            table=sql.Identifier(table),
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
            vals=sql.SQL(", ").join(sql.Placeholder() * len(cols)),
            conflict=sql.SQL("ON CONFLICT " + on_conflict) if on_conflict else sql.SQL(""),
        )
        .as_string(None)
    )


def insert(
    conn: Conn,
    table: str,
    row: dict[str, Any],
    *,
    json_columns: Collection[str] = (),
    on_conflict: str = "",
) -> dict[str, Any] | None:
    """INSERT one row and return it; None only when ``on_conflict`` (e.g. "DO NOTHING") skipped it."""
    return conn.execute(*insert_statement(table, row, json_columns=json_columns, on_conflict=on_conflict)).fetchone()


def insert_one(conn: Conn, table: str, row: dict[str, Any], *, json_columns: Collection[str] = ()) -> dict[str, Any]:
    created = insert(conn, table, row, json_columns=json_columns)
    assert created is not None
    return created


def assignments(
    changes: dict[str, Any], *, json_columns: Collection[str] = ()
) -> tuple[list[sql.Composable], list[Any]]:
    """``col = %s`` pieces and their values for an UPDATE ... SET."""
    return (
        [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in changes],
        [value(c, v, json_columns) for c, v in changes.items()],
    )


def get_by_id(
    conn: Conn, table: str, row_id: str, *, organization_id: str | None = None, for_update: bool = False
) -> dict[str, Any] | None:
    """One row by id; scoped to an organization when given (another organization's id finds nothing)."""
    query = sql.SQL("SELECT * FROM {} WHERE id = %s").format(sql.Identifier(table))
    params: list[Any] = [row_id]
    if organization_id is not None:
        query += sql.SQL(" AND organization_id = %s")
        params.append(organization_id)
    if for_update:
        query += sql.SQL(" FOR UPDATE")
    return conn.execute(query, params).fetchone()
