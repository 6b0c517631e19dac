"""SQL for an agent's view of the files of its attached folders (which are open, on which lines) and
for the scope and statistics of a hybrid search over those files' chunks (:mod:`o.store.search`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from o.errors import NotFound
from o.store.db import Conn
from o.store.filters import Where
from o.store.pages import Page, fetch_page
from o.store.passages import TEXT_CONFIG

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

_VIEW = sql.SQL(
    """SELECT af.id, af.file_id, af.is_open, af.start_line, af.end_line, af.last_accessed_at, af.created_at,
              f.file_name, f.folder_id, d.name AS folder_name, f.processing_status
       FROM agent_files af JOIN folder_files f ON f.id = af.file_id JOIN folders d ON d.id = f.folder_id"""
)


def views_page(conn: Conn, agent_id: str, page: Page, *, is_open: bool | None = None) -> list[dict[str, Any]]:
    """The agent's file views in creation order between the cursors (an ``agent_files`` page)."""
    scope = sql.SQL("agent_id = %s") + (sql.SQL(" AND is_open = %s") if is_open is not None else sql.SQL(""))
    params: tuple[Any, ...] = (agent_id,) if is_open is None else (agent_id, is_open)
    ids = [r["id"] for r in fetch_page(conn, table="agent_files", scope=scope, scope_params=params, page=page)]
    if not ids:
        return []
    rows = conn.execute(_VIEW + sql.SQL(" WHERE af.id = ANY(%s)"), (ids,)).fetchall()
    by_id = {r["id"]: r for r in rows}
    return [by_id[i] for i in ids if i in by_id]


def view(conn: Conn, agent_id: str, file_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    lock = sql.SQL(" FOR UPDATE OF af") if for_update else sql.SQL("")
    return conn.execute(
        _VIEW + sql.SQL(" WHERE af.agent_id = %s AND af.file_id = %s{}").format(lock), (agent_id, file_id)
    ).fetchone()


def view_by_name(conn: Conn, agent_id: str, file_name: str) -> dict[str, Any] | None:
    """The agent's view of the file called ``file_name`` (or ``folder/file_name``)."""
    return conn.execute(
        _VIEW + sql.SQL(" WHERE af.agent_id = %s AND (f.file_name = %s OR d.name || '/' || f.file_name = %s)"),
        (agent_id, file_name, file_name),
    ).fetchone()


def open_views(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The agent's open files, least recently used first, with their parsed content."""
    return conn.execute(
        sql.SQL(
            """SELECT af.file_id, af.start_line, af.end_line, f.file_name, d.name AS folder_name, f.content
               FROM agent_files af JOIN folder_files f ON f.id = af.file_id JOIN folders d ON d.id = f.folder_id
               WHERE af.agent_id = %s AND af.is_open ORDER BY af.last_accessed_at, af.id"""
        ),
        (agent_id,),
    ).fetchall()


def set_open(conn: Conn, agent_id: str, file_id: str, start_line: int | None, end_line: int | None) -> None:
    conn.execute(
        """UPDATE agent_files SET is_open = true, start_line = %s, end_line = %s, last_accessed_at = clock_timestamp()
           WHERE agent_id = %s AND file_id = %s""",
        (start_line, end_line, agent_id, file_id),
    )


def close(conn: Conn, agent_id: str, file_ids: list[str] | None = None) -> list[str]:
    """Close the given files (all when None); the names of those that were open."""
    only = sql.SQL(" AND af.file_id = ANY(%s)") if file_ids is not None else sql.SQL("")
    rows = conn.execute(
        sql.SQL(
            """UPDATE agent_files af SET is_open = false, start_line = NULL, end_line = NULL
               FROM folder_files f WHERE f.id = af.file_id AND af.agent_id = %s AND af.is_open{}
               RETURNING f.file_name"""
        ).format(only),
        (agent_id, file_ids) if file_ids is not None else (agent_id,),
    ).fetchall()
    return [r["file_name"] for r in rows]


def attached_files(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """Completed files of the agent's attached folders with their content (what grep reads)."""
    return conn.execute(
        """SELECT f.id, f.file_name, d.name AS folder_name, f.content
           FROM agent_files af JOIN folder_files f ON f.id = af.file_id JOIN folders d ON d.id = f.folder_id
           WHERE af.agent_id = %s AND f.processing_status = 'completed' ORDER BY f.file_name, f.id""",
        (agent_id,),
    ).fetchall()


def folder_embeddings(conn: Conn, agent_id: str) -> list[dict[str, Any]]:
    """The attached folders' ids and embedding configs (a search embeds its query once per model)."""
    return conn.execute(
        """SELECT d.id, d.embedding_config FROM agent_folders af JOIN folders d ON d.id = af.folder_id
           WHERE af.agent_id = %s ORDER BY d.id""",
        (agent_id,),
    ).fetchall()


@dataclass(frozen=True)
class FolderScope:
    """A folder whose file chunks a search covers: its one model, and the query embedded by that model
    (None = its chunks are found by their words only)."""

    folder_id: str
    model: str
    dim: int
    query_vector: np.ndarray | None


def caps(conn: Conn, agent_id: str) -> tuple[int, int]:
    """The agent's file caps: (most files open at once, characters shown of each)."""
    row = conn.execute(
        "SELECT max_files_open, per_file_view_window_char_limit FROM agents WHERE id = %s", (agent_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    return int(row["max_files_open"]), int(row["per_file_view_window_char_limit"])


def chunk_scope(organization_id: str, folder_ids: Sequence[str]) -> Where:
    """The file chunks a search reads (aliased ``p``): the organization's, of these folders, of
    completed files only (a file being processed is never found half-indexed)."""
    where = Where("p").equals("organization_id", organization_id)
    # no folders: no chunks (Where.equals_any would leave the condition out)
    where.conditions.append(sql.SQL("p.folder_id = ANY(%s)"))
    where.values.append(list(folder_ids))
    # Files being processed are few: their ids, computed once (an InitPlan, not a join per row), leave
    # the chunks' own indexes (HNSW, GIN) to answer; a join with folder_files would make the planner
    # walk every chunk of the folders instead. A file in error has no chunks.
    where.conditions.append(
        sql.SQL(
            "p.file_id <> ALL (ARRAY(SELECT f.id FROM folder_files f WHERE f.folder_id = ANY(%s)"
            " AND f.processing_status IN ('pending', 'parsing', 'embedding')))"
        )
    )
    where.values.append(list(folder_ids))
    return where


# BM25 statistics of the chunks of several folders, summed (one idf over every chunk searched)
_SUMMED_STATS = """
    WITH words AS (SELECT DISTINCT lexeme FROM unnest(to_tsvector(%(config)s::regconfig, %(text)s)))
    SELECT (SELECT coalesce(sum(docs), 0) FROM folder_corpus_stats WHERE folder_id = ANY(%(folders)s)) AS docs,
           (SELECT coalesce(sum(total_len), 0) FROM folder_corpus_stats WHERE folder_id = ANY(%(folders)s))
               AS total_len,
           (SELECT coalesce(jsonb_agg(jsonb_build_array(w.lexeme, coalesce(
                       (SELECT sum(t.df) FROM folder_term_stats t
                        WHERE t.folder_id = ANY(%(folders)s) AND t.lexeme = w.lexeme), 0))), '[]'::jsonb)
            FROM words w) AS terms
"""


def summed_stats(conn: Conn, text: str, folder_ids: Sequence[str]) -> dict[str, Any] | None:
    """The BM25 statistics of a search over these folders' chunks (docs, total length, and each query
    lexeme's document count), as :func:`o.store.search.lexical_query` reads them."""
    return conn.execute(_SUMMED_STATS, {"config": TEXT_CONFIG, "text": text, "folders": list(folder_ids)}).fetchone()


# what a file search returns of each chunk (o.store.search.hybrid_search adds its scores), with its
# file's name read in the same statement
CHUNK_COLUMNS = ("file_id", "seq", "text", "start_line", "end_line", "page", "heading")
CHUNK_FILE_NAME = sql.SQL("(SELECT f.file_name FROM folder_files f WHERE f.id = p.file_id) AS file_name")
