"""SQL for archives: shared stores of passages, and which agents attach them.

An archive's passages are rows of ``passages`` with ``archive_id`` set (:mod:`o.store.passages`
writes and indexes them), stored once whatever the number of agents that attach the archive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql
from psycopg.types.json import Jsonb

from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page
from o.store.passages import PASSAGE_COLUMNS, TEXT_CONFIG

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

COLUMNS = ("id", "organization_id", "name", "description", "embedding_config", "metadata", "created_at", "updated_at")
_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
_PASSAGE_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, PASSAGE_COLUMNS))


@dataclass(frozen=True)
class ArchiveScope:
    """An archive (passages only) a search covers besides the agent's rows: its one model, and the
    query embedded by that model (None = its rows are found by their words only)."""

    archive_id: str
    model: str | None
    dim: int
    query_vector: np.ndarray | None


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    found = conn.execute(
        sql.SQL(
            """INSERT INTO archives (id, organization_id, name, description, embedding_config, metadata)
               VALUES (%s, %s, %s, %s, %s, %s) RETURNING {}"""
        ).format(_COLUMNS),
        (
            row["id"],
            row["organization_id"],
            row["name"],
            row.get("description"),
            Jsonb(row["embedding_config"]),
            Jsonb(row.get("metadata") or {}),
        ),
    ).fetchone()
    assert found is not None
    return found


def get(conn: Conn, organization_id: str, archive_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
    return conn.execute(
        sql.SQL("SELECT {} FROM archives WHERE id = %s AND organization_id = %s{}").format(_COLUMNS, lock),
        (archive_id, organization_id),
    ).fetchone()


def update(conn: Conn, organization_id: str, archive_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Set ``name`` and/or ``description``; None when the archive is not in the organization."""
    assignments = [sql.SQL("{} = %s").format(sql.Identifier(k)) for k in changes]
    statement = sql.SQL(
        "UPDATE archives SET {}, updated_at = now() WHERE id = %s AND organization_id = %s RETURNING {}"
    )
    return conn.execute(
        statement.format(sql.SQL(", ").join(assignments), _COLUMNS),
        (*changes.values(), archive_id, organization_id),
    ).fetchone()


def delete(conn: Conn, organization_id: str, archive_id: str) -> bool:
    cur = conn.execute("DELETE FROM archives WHERE id = %s AND organization_id = %s", (archive_id, organization_id))
    return cur.rowcount > 0


def list_page(
    conn: Conn, organization_id: str, page: Page, *, name: str | None = None, agent_id: str | None = None
) -> list[dict[str, Any]]:
    """Archives in creation order between cursors; by exact name, or attached to an agent."""
    where = Where().equals("organization_id", organization_id).equals("name", name)
    scope = where.clause()
    params: tuple[Any, ...] = where.params
    if agent_id is not None:
        scope = sql.SQL("{} AND id IN (SELECT archive_id FROM agent_archives WHERE agent_id = %s)").format(scope)
        params = (*params, agent_id)
    return fetch_page(conn, table="archives", columns=_COLUMNS, scope=scope, scope_params=params, page=page)


def attach(conn: Conn, agent_id: str, archive_id: str) -> None:
    conn.execute(
        "INSERT INTO agent_archives (agent_id, archive_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (agent_id, archive_id),
    )


def detach(conn: Conn, agent_id: str, archive_id: str) -> bool:
    cur = conn.execute("DELETE FROM agent_archives WHERE agent_id = %s AND archive_id = %s", (agent_id, archive_id))
    return cur.rowcount > 0


def attached(conn: Conn, organization_id: str, agent_id: str) -> list[dict[str, Any]]:
    """The archives attached to an agent, in the order they were attached."""
    return conn.execute(
        sql.SQL(
            """SELECT {} FROM archives a JOIN agent_archives aa ON aa.archive_id = a.id
               WHERE aa.agent_id = %s AND a.organization_id = %s ORDER BY aa.created_at, a.id"""
        ).format(sql.SQL(", ").join(sql.SQL("a.{}").format(sql.Identifier(c)) for c in COLUMNS)),
        (agent_id, organization_id),
    ).fetchall()


def get_passage(conn: Conn, organization_id: str, archive_id: str, passage_id: str) -> dict[str, Any] | None:
    return conn.execute(
        sql.SQL("SELECT {} FROM passages WHERE id = %s AND organization_id = %s AND archive_id = %s").format(
            _PASSAGE_COLUMNS
        ),
        (passage_id, organization_id, archive_id),
    ).fetchone()


def delete_passage(conn: Conn, organization_id: str, archive_id: str, passage_id: str) -> bool:
    cur = conn.execute(
        "DELETE FROM passages WHERE id = %s AND organization_id = %s AND archive_id = %s",
        (passage_id, organization_id, archive_id),
    )
    return cur.rowcount > 0


def list_passages(conn: Conn, organization_id: str, archive_id: str, page: Page) -> list[dict[str, Any]]:
    """An archive's passages in creation order between cursors."""
    where = Where().equals("organization_id", organization_id).equals("archive_id", archive_id)
    return fetch_page(
        conn, table="passages", columns=_PASSAGE_COLUMNS, scope=where.clause(), scope_params=where.params, page=page
    )


# Statistics of an agent's corpus summed with those of archives: one idf over every row searched.
_SUMMED_STATS = """
    WITH stats AS (
        SELECT docs, total_len FROM search_corpus_stats WHERE agent_id = %(agent)s AND corpus = %(corpus)s
        UNION ALL
        SELECT docs, total_len FROM archive_corpus_stats WHERE archive_id = ANY(%(archives)s)),
    words AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector(%(config)s::regconfig, %(text)s))),
    counted AS (
        SELECT w.lexeme,
               coalesce((SELECT t.df FROM search_term_stats t
                         WHERE t.agent_id = %(agent)s AND t.corpus = %(corpus)s AND t.lexeme = w.lexeme), 0)
               + coalesce((SELECT sum(a.df) FROM archive_term_stats a
                           WHERE a.archive_id = ANY(%(archives)s) AND a.lexeme = w.lexeme), 0) AS df
        FROM words w)
    SELECT (SELECT coalesce(sum(docs), 0) FROM stats) AS docs,
           (SELECT coalesce(sum(total_len), 0) FROM stats) AS total_len,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(c.lexeme, c.df)), '[]'::jsonb) FROM counted c) AS terms
"""


def summed_stats(
    conn: Conn, corpus: str, agent_id: str | None, text: str, archive_ids: Sequence[str]
) -> dict[str, Any] | None:
    """The BM25 statistics of a search over an agent's rows and these archives' (docs, total length,
    and each query lexeme's document count), as :func:`o.store.search.lexical_query` reads them."""
    params = {"agent": agent_id, "corpus": corpus, "archives": list(archive_ids), "config": TEXT_CONFIG}
    return conn.execute(_SUMMED_STATS, {**params, "text": text}).fetchone()
