"""Cursor pagination shared by list queries: ``before``/``after`` are ids of rows in the same list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from o.errors import InvalidInput
from o.store.db import Conn

ALL_COLUMNS = sql.SQL("*")


@dataclass(frozen=True)
class Page:
    before: str | None = None
    after: str | None = None
    limit: int = 50
    order: Literal["asc", "desc"] = "asc"


def cursor_clause(
    conn: Conn, table: str, key: str, page: Page, scope: sql.Composable, scope_params: tuple[Any, ...]
) -> tuple[sql.Composable, list[Any]]:
    """SQL that keeps rows strictly after/before the cursor rows, ordered by ``key`` then id.

    A cursor that names no row in scope is an error rather than an empty page, so a client
    that mistyped an id is told so.
    """
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for cursor, op in ((page.after, ">"), (page.before, "<")):
        if cursor is None:
            continue
        row = conn.execute(
            sql.SQL("SELECT {key} AS k FROM {table} WHERE id = %s AND ").format(
                key=sql.Identifier(key), table=sql.Identifier(table)
            )
            + scope,
            (cursor, *scope_params),
        ).fetchone()
        if row is None:
            raise InvalidInput(f"cursor {cursor!r} does not name an item of this list")
        parts.append(sql.SQL("({key}, id) {op} (%s, %s)").format(key=sql.Identifier(key), op=sql.SQL(op)))
        params.extend([row["k"], cursor])
    clause = sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")
    return clause, params


def order_clause(key: str, page: Page) -> sql.Composable:
    direction = sql.SQL("ASC" if page.order == "asc" else "DESC")
    return sql.SQL("ORDER BY {key} {d}, id {d}").format(key=sql.Identifier(key), d=direction)


def fetch_page(
    conn: Conn,
    *,
    table: str,
    scope: sql.Composable,
    scope_params: tuple[Any, ...],
    page: Page,
    key: str = "created_at",
    columns: sql.Composable = ALL_COLUMNS,
) -> list[dict[str, Any]]:
    """Rows of ``table`` within ``scope``, between the cursors, at most ``page.limit``, in ``page.order``.

    ``before``/``after`` bound the key (older/newer). When the requested order would start
    far from the only cursor given (ascending with ``before``, descending with ``after``),
    the rows nearest the cursor are fetched and returned in the requested order.
    """
    where, params = cursor_clause(conn, table, key, page, scope, scope_params)
    only_before = page.before is not None and page.after is None
    only_after = page.after is not None and page.before is None
    nearest_first = (page.order == "asc" and only_before) or (page.order == "desc" and only_after)
    scan_order = ("desc" if page.order == "asc" else "asc") if nearest_first else page.order
    query = sql.SQL("SELECT {cols} FROM {table} WHERE {scope} AND {where} {order} LIMIT %s").format(
        cols=columns,
        table=sql.Identifier(table),
        scope=scope,
        where=where,
        order=order_clause(key, Page(order=scan_order)),
    )
    rows = conn.execute(query, (*scope_params, *params, page.limit)).fetchall()
    if nearest_first:
        rows.reverse()
    return rows
