"""SQL for the tags an organization's agents carry (Letta's ``tags.list``)."""

from __future__ import annotations

from typing import Any

from psycopg import sql

from o.store.db import Conn
from o.store.filters import like_pattern
from o.store.pages import Page


def agent_tags(conn: Conn, organization_id: str, page: Page, *, contains: str | None = None) -> list[str]:
    """The distinct tags of the organization's agents in name order, a page at a time.

    Cursors are tag names and relative to the order asked for: ``after`` keeps the tags that come
    after it in that order, ``before`` the ones that come before it (the nearest ``limit`` of them).
    """
    ascending = page.order == "asc"
    conditions = [sql.SQL("a.organization_id = %s")]
    params: list[Any] = [organization_id]
    if contains:
        conditions.append(sql.SQL("t.tag ILIKE %s"))
        params.append(like_pattern(contains))
    for cursor, later in ((page.after, True), (page.before, False)):
        if cursor is not None:
            conditions.append(sql.SQL("t.tag > %s" if later == ascending else "t.tag < %s"))
            params.append(cursor)
    # only ``before``: the nearest tags first, turned round below
    nearest_first = page.before is not None and page.after is None
    scan_ascending = ascending != nearest_first
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT t.tag FROM agents a CROSS JOIN LATERAL unnest(a.tags) AS t(tag) "
            "WHERE {} ORDER BY t.tag {} LIMIT %s"
        ).format(sql.SQL(" AND ").join(conditions), sql.SQL("ASC" if scan_ascending else "DESC")),
        (*params, page.limit),
    ).fetchall()
    tags = [r["tag"] for r in rows]
    return tags[::-1] if nearest_first else tags
