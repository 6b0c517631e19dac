"""Cursor pagination shared by list queries, with Letta's semantics.

A list is a sequence: its rows sorted by ``key`` then id, ascending or descending as asked.
``after``/``before`` name rows of that same list and are relative to the *requested* order: with
``order=desc``, ``after=X`` is what follows X going down (older rows), ``before=X`` what precedes it
(newer rows). A page with ``after`` is the first ``limit`` rows after it; a page with only ``before``
is the ``limit`` rows nearest before it — both in the requested order, so letta-client's iterators
(``after=<last id>`` forwards, ``before=<first id>`` backwards) see every row exactly once.

Keyset conditions rather than offsets: a row inserted while a client pages through cannot shift
the rows that were already there, so each of them is seen once.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from o.errors import InvalidInput
from o.store import keyed
from o.store.db import Conn

ALL_COLUMNS = sql.SQL("*")

# page statements composed once, by their shape and page form (see fetch_page); a few dozen in all
_COMPOSED: dict[tuple[Hashable, ...], bytes] = {}
_COMPOSED_MAX = 1_000


@dataclass(frozen=True)
class Page:
    before: str | None = None
    after: str | None = None
    limit: int = 50
    order: Literal["asc", "desc"] = "asc"
    # the column the list is sorted by; None: the list's own default (creation time)
    order_by: str | None = None


def _comparison(page: Page, cursor_is_after: bool) -> str:
    """How a row compares to a cursor row in (key, id) terms to lie on the asked side of it."""
    later_in_sequence = ">" if page.order == "asc" else "<"
    earlier_in_sequence = "<" if page.order == "asc" else ">"
    return later_in_sequence if cursor_is_after else earlier_in_sequence


def cursor_clause(
    conn: Conn,
    table: str,
    key: str,
    page: Page,
    scope: sql.Composable,
    scope_params: tuple[Any, ...],
    *,
    unique_key: bool = False,
) -> tuple[sql.Composable, list[Any]]:
    """SQL that keeps rows strictly after/before the cursor rows in the requested order.

    A cursor that names no row in scope (a mistyped id, another organization's id, a row of another
    list) is an error rather than an empty page, so the client is told which cursor is wrong.
    """
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for name, cursor, is_after in (("after", page.after, True), ("before", page.before, False)):
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
            raise InvalidInput(f"{name} cursor {cursor!r} does not name an item of this list")
        if unique_key:
            op = sql.SQL(_comparison(page, is_after))
            parts.append(sql.SQL("{key} {op} %s").format(key=sql.Identifier(key), op=op))
            params.append(row["k"])
            continue
        parts.append(
            sql.SQL("({key}, id) {op} (%s, %s)").format(
                key=sql.Identifier(key), op=sql.SQL(_comparison(page, is_after))
            )
        )
        params.extend([row["k"], cursor])
    clause = sql.SQL(" AND ").join(parts) if parts else sql.SQL("TRUE")
    return clause, params


def order_clause(key: str, order: Literal["asc", "desc"], *, unique_key: bool = False) -> sql.Composable:
    direction = sql.SQL("ASC" if order == "asc" else "DESC")
    if unique_key:  # no tie to break: the index on (scope, key) gives the order, without a sort
        return sql.SQL("ORDER BY {key} {d}").format(key=sql.Identifier(key), d=direction)
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
    unique_key: bool = False,
    shape: Hashable = None,
) -> list[dict[str, Any]]:
    """Rows of ``table`` within ``scope``, between the cursors, at most ``page.limit``, in ``page.order``.

    ``key`` is the list's default sort column; ``page.order_by`` (already checked against what the
    route allows) overrides it. With only ``before``, the rows nearest the cursor are fetched (the
    sequence scanned backwards) and turned back into the requested order.

    ``shape``, when given, names the SQL of ``scope`` and ``columns`` within the table (calls with equal
    shapes pass the same text): the statement is then composed once per shape and page form, not per
    call (composing and rendering it was a twentieth of a history page's CPU).
    """
    # ``unique_key``: ``key`` alone orders the rows (no two share it), so id breaks no tie
    unique_key = unique_key and page.order_by in (None, key)
    key = page.order_by or key
    # on the hot path, the request's key is checked by these statements (o.store.keyed)
    held, scope_params = keyed.with_key("", scope_params)
    if held:
        scope = sql.SQL("({}){}").format(scope, sql.SQL(held))
    where, params = cursor_clause(conn, table, key, page, scope, scope_params, unique_key=unique_key)
    backwards = page.before is not None and page.after is None
    flipped: Literal["asc", "desc"] = "desc" if page.order == "asc" else "asc"
    order: Literal["asc", "desc"] = flipped if backwards else page.order
    form = (table, key, unique_key, order, page.after is not None, page.before is not None, bool(held))
    composed = None if shape is None else _COMPOSED.get((shape, *form))
    if composed is None:
        composed = (
            sql.SQL("SELECT {cols} FROM {table} WHERE {scope} AND {where} {order} LIMIT %s")
            .format(
                cols=columns,
                table=sql.Identifier(table),
                scope=scope,
                where=where,
                order=order_clause(key, order, unique_key=unique_key),
            )
            .as_bytes(conn)
        )
        if shape is not None:
            if len(_COMPOSED) >= _COMPOSED_MAX:
                _COMPOSED.clear()
            _COMPOSED[(shape, *form)] = composed
    rows = conn.execute(composed, (*scope_params, *params, page.limit)).fetchall()
    keyed.settle(conn, bool(rows))
    if backwards:
        rows.reverse()
    return rows
