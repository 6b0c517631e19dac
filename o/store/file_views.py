"""SQL for an agent's view of the files of its attached folders (which are open, on which lines) and
for searching those files' chunks (full-text grep candidates and vector search)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg import sql

from o.store.db import Conn
from o.store.pages import Page, fetch_page
from o.store.passages import vector_column, vector_literal, vector_type

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


def nearest_chunks(
    conn: Conn, folder_ids: list[str], model: str, dim: int, query: np.ndarray, limit: int
) -> list[dict[str, Any]]:
    """The chunks of completed files in ``folder_ids`` (embedded by ``model``) nearest ``query``."""
    column = sql.Identifier(vector_column(dim))
    return conn.execute(
        sql.SQL(
            """SELECT c.file_id, c.seq, c.text, c.start_line, c.end_line, c.page, c.heading, f.file_name,
                      1 - (c.{col} <=> %s::{vtype}) AS score
               FROM file_chunks c JOIN folder_files f ON f.id = c.file_id
               WHERE c.folder_id = ANY(%s) AND c.embedding_model = %s AND c.embedding_dim = %s
                 AND f.processing_status = 'completed'
               ORDER BY c.{col} <=> %s::{vtype} LIMIT %s"""
        ).format(col=column, vtype=sql.SQL(vector_type(dim))),
        (vector_literal(query, dim), folder_ids, model, dim, vector_literal(query, dim), limit),
    ).fetchall()
