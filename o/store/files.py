"""SQL for the files of folders: their rows (each also its own ingestion job), the chunks they are
indexed as, and the searches over the chunks of an agent's attached folders.

A worker claims a file with a lease (``claimed_until``); a crashed worker's file is claimed again
when its lease ends. Chunks are keyed by (file_id, seq) and written ``ON CONFLICT DO NOTHING``, so
a retry re-embeds only what is missing and never duplicates a chunk. Searches read only chunks of
completed files: a file being (re)processed is never found half-indexed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from o.store.db import Conn
from o.store.pages import Page, fetch_page
from o.store.passages import TEXT_CONFIG, vector_column, vector_params, vector_type

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

_META = sql.SQL(
    "id, organization_id, folder_id, file_name, original_file_name, file_type, file_size, blob_key, "
    "processing_status, error_message, total_chunks, chunks_embedded, attempts, created_at, updated_at"
)
UNFINISHED = ("pending", "parsing", "embedding")


@dataclass(frozen=True)
class NewChunk:
    seq: int
    text: str
    start_line: int
    end_line: int
    page: int | None
    heading: str
    embedding: np.ndarray


def columns(include_content: bool) -> sql.Composable:
    return sql.SQL("{}, content").format(_META) if include_content else _META


def get(
    conn: Conn, organization_id: str, file_id: str, *, content: bool = False, for_update: bool = False
) -> dict[str, Any] | None:
    lock = sql.SQL(" FOR UPDATE") if for_update else sql.SQL("")
    return conn.execute(
        sql.SQL("SELECT {} FROM folder_files WHERE id = %s AND organization_id = %s{}").format(columns(content), lock),
        (file_id, organization_id),
    ).fetchone()


def by_name(conn: Conn, folder_id: str, file_name: str) -> dict[str, Any] | None:
    return conn.execute(
        sql.SQL("SELECT {} FROM folder_files WHERE folder_id = %s AND file_name = %s FOR UPDATE").format(_META),
        (folder_id, file_name),
    ).fetchone()


def names_like(conn: Conn, folder_id: str, stem: str, suffix: str) -> set[str]:
    rows = conn.execute(
        "SELECT file_name FROM folder_files WHERE folder_id = %s AND starts_with(file_name, %s)"
        " AND right(file_name, %s) = %s",
        (folder_id, stem, len(suffix), suffix),
    ).fetchall()
    return {r["file_name"] for r in rows}


def insert(conn: Conn, row: dict[str, Any]) -> dict[str, Any]:
    """Insert a pending file; every agent that has its folder attached gets a (closed) view of it."""
    out = conn.execute(
        sql.SQL(
            """INSERT INTO folder_files (id, organization_id, folder_id, file_name, original_file_name, file_type,
                                         file_size, blob_key)
               VALUES (%(id)s, %(organization_id)s, %(folder_id)s, %(file_name)s, %(original_file_name)s,
                       %(file_type)s, %(file_size)s, %(blob_key)s)
               RETURNING {}"""
        ).format(_META),
        row,
    ).fetchone()
    assert out is not None
    conn.execute(
        """INSERT INTO agent_files (id, agent_id, file_id)
           SELECT 'file_agent-' || gen_random_uuid(), agent_id, %s FROM agent_folders WHERE folder_id = %s
           ON CONFLICT (agent_id, file_id) DO NOTHING""",
        (row["id"], row["folder_id"]),
    )
    return out


def reset(conn: Conn, file_id: str, *, file_type: str, file_size: int, blob_key: str) -> dict[str, Any]:
    """A replaced file: new bytes, processed again from the start (its old chunks go)."""
    conn.execute("DELETE FROM file_chunks WHERE file_id = %s", (file_id,))
    out = conn.execute(
        sql.SQL(
            """UPDATE folder_files SET file_type = %s, file_size = %s, blob_key = %s, content = NULL,
                      processing_status = 'pending', error_message = NULL, total_chunks = NULL,
                      chunks_embedded = 0, attempts = 0, claimed_until = NULL, claim_id = NULL, updated_at = now()
               WHERE id = %s RETURNING {}"""
        ).format(_META),
        (file_type, file_size, blob_key, file_id),
    ).fetchone()
    assert out is not None
    return out


def delete(conn: Conn, organization_id: str, folder_id: str, file_id: str) -> dict[str, Any] | None:
    """The deleted file's row (its blob key is the caller's to remove), or None."""
    return conn.execute(
        "DELETE FROM folder_files WHERE id = %s AND folder_id = %s AND organization_id = %s RETURNING blob_key",
        (file_id, folder_id, organization_id),
    ).fetchone()


def blob_keys(conn: Conn, folder_id: str) -> list[str]:
    return [r["blob_key"] for r in conn.execute("SELECT blob_key FROM folder_files WHERE folder_id = %s", (folder_id,))]


def list_page(conn: Conn, folder_id: str, page: Page, *, content: bool = False) -> list[dict[str, Any]]:
    return fetch_page(
        conn,
        table="folder_files",
        scope=sql.SQL("folder_id = %s"),
        scope_params=(folder_id,),
        page=page,
        columns=columns(content),
    )


def status(conn: Conn, file_id: str) -> str | None:
    row = conn.execute("SELECT processing_status FROM folder_files WHERE id = %s", (file_id,)).fetchone()
    return None if row is None else str(row["processing_status"])


def stored_in(conn: Conn, folder_id: str) -> bool:
    """Whether any chunk of the folder is stored (embedded with the folder's model)."""
    return conn.execute("SELECT 1 FROM file_chunks WHERE folder_id = %s LIMIT 1", (folder_id,)).fetchone() is not None


def stored_bytes(conn: Conn, organization_id: str) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(file_size), 0) AS n FROM folder_files WHERE organization_id = %s", (organization_id,)
    ).fetchone()
    return int(row["n"]) if row else 0


# -- ingestion ------------------------------------------------------------------------------------------


def claim(
    conn: Conn, lease_s: float, file_id: str | None = None, *, quiet_s: float | None = None
) -> dict[str, Any] | None:
    """Take the oldest unfinished file whose lease is free (or ``file_id`` if it is), for ``lease_s``;
    counts the attempt. SKIP LOCKED: two workers never take the same file. With ``quiet_s``, only a
    file nothing has written for that long (no worker is at it, nor about to take it)."""
    quiet = sql.SQL(" AND updated_at < now() - make_interval(secs => %s)") if quiet_s is not None else sql.SQL("")
    only = sql.SQL(" AND id = %s") if file_id else sql.SQL("")
    row = conn.execute(
        sql.SQL(
            """SELECT id FROM folder_files
               WHERE processing_status IN ('pending', 'parsing', 'embedding')
                 AND (claimed_until IS NULL OR claimed_until < now()){}{}
               ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED"""
        ).format(quiet, only),
        ((quiet_s,) if quiet_s is not None else ()) + ((file_id,) if file_id else ()),
    ).fetchone()
    if row is None:
        return None
    return conn.execute(
        sql.SQL(
            """UPDATE folder_files SET attempts = attempts + 1, claimed_until = now() + make_interval(secs => %s),
                      claim_id = gen_random_uuid()::text,
                      processing_status = CASE WHEN processing_status = 'pending' THEN 'parsing'
                                               ELSE processing_status END, updated_at = now()
               WHERE id = %s RETURNING {}, content, claim_id"""
        ).format(_META),
        (lease_s, row["id"]),
    ).fetchone()


def holds(conn: Conn, file_id: str, claim_id: str) -> bool:
    """Whether ``claim_id`` is still the file's claim; locks the row, so a replace (which resets the
    file and deletes its chunks) waits for the writes made under the claim, or comes first.

    The folder's row is key-share locked first. An upload locks the folder (for update), then its
    chunk deletes update the folder's corpus statistics; a worker's chunk inserts update those
    statistics, then insert new terms whose foreign key key-share locks the folder. Without the folder
    taken first, each waits for the other (a deadlock, seen as a 500 on a replacing upload)."""
    conn.execute(
        "SELECT 1 FROM folders WHERE id = (SELECT folder_id FROM folder_files WHERE id = %s) FOR KEY SHARE",
        (file_id,),
    )
    row = conn.execute(
        "SELECT 1 FROM folder_files WHERE id = %s AND claim_id = %s FOR UPDATE", (file_id, claim_id)
    ).fetchone()
    return row is not None


def extend(conn: Conn, file_id: str, lease_s: float) -> None:
    conn.execute(
        "UPDATE folder_files SET claimed_until = now() + make_interval(secs => %s) WHERE id = %s", (lease_s, file_id)
    )


def parsed(conn: Conn, file_id: str, content: str, total_chunks: int) -> None:
    conn.execute(
        """UPDATE folder_files SET content = %s, total_chunks = %s, processing_status = 'embedding',
                  updated_at = now() WHERE id = %s""",
        (content, total_chunks, file_id),
    )


def existing_seqs(conn: Conn, file_id: str) -> set[int]:
    return {r["seq"] for r in conn.execute("SELECT seq FROM file_chunks WHERE file_id = %s", (file_id,))}


def insert_chunks(conn: Conn, file: dict[str, Any], chunks: Sequence[NewChunk], *, model: str, dim: int) -> int:
    """Store embedded chunks (a retry's repeats are ignored) and count them on the file."""
    if not chunks:
        return 0
    query = sql.SQL(
        """INSERT INTO file_chunks (file_id, seq, organization_id, folder_id, text, start_line, end_line, page,
                                    heading, embedding_model, embedding_dim, {column}, search_tsv, search_len)
           SELECT %s, t.seq, %s, %s, t.text, t.sl, t.el, t.page, t.heading, %s, %s, t.vec::{vtype}, t.tsv,
                  -- BM25 length: a chunk has no context words (weight D), so every position counts once
                  (SELECT coalesce(sum(cardinality(u.positions)), 0) FROM unnest(t.tsv) u)
           FROM (SELECT r.*, setweight(to_tsvector({cfg}, r.heading), 'B')
                             || setweight(to_tsvector({cfg}, r.text), 'A') AS tsv
                 FROM unnest(%s::int[], %s::text[], %s::int[], %s::int[], %s::int[], %s::text[], %b::vector[])
                      AS r(seq, text, sl, el, page, heading, vec)) t
           ON CONFLICT (file_id, seq) DO NOTHING"""
    ).format(column=sql.Identifier(vector_column(dim)), vtype=sql.SQL(vector_type(dim)), cfg=sql.Literal(TEXT_CONFIG))
    cur = conn.execute(
        query,
        (
            file["id"],
            file["organization_id"],
            file["folder_id"],
            model,
            dim,
            [c.seq for c in chunks],
            [c.text for c in chunks],
            [c.start_line for c in chunks],
            [c.end_line for c in chunks],
            [c.page for c in chunks],
            [c.heading for c in chunks],
            vector_params(conn, [c.embedding for c in chunks], dim),
        ),
    )
    conn.execute(
        """UPDATE folder_files SET chunks_embedded = (SELECT count(*) FROM file_chunks WHERE file_id = %s),
                  updated_at = now() WHERE id = %s""",
        (file["id"], file["id"]),
    )
    return cur.rowcount


def finish(conn: Conn, file_id: str) -> None:
    """Completed: searchable, and listed in the context of the agents that have its folder (their
    compiled prompts are stale)."""
    conn.execute(
        """UPDATE folder_files SET processing_status = 'completed', claimed_until = NULL, claim_id = NULL,
                  error_message = NULL, updated_at = now() WHERE id = %s""",
        (file_id,),
    )
    conn.execute(
        """UPDATE agents SET version = version + 1 WHERE id IN (
               SELECT af.agent_id FROM agent_folders af JOIN folder_files f ON f.folder_id = af.folder_id
               WHERE f.id = %s)""",
        (file_id,),
    )


def fail(conn: Conn, file_id: str, message: str) -> None:
    """The file in ``error`` with ``message``, and none of its chunks (nothing half-indexed)."""
    conn.execute("DELETE FROM file_chunks WHERE file_id = %s", (file_id,))
    conn.execute(
        """UPDATE folder_files SET processing_status = 'error', error_message = %s, claimed_until = NULL,
                  claim_id = NULL, chunks_embedded = 0, updated_at = now() WHERE id = %s""",
        (message, file_id),
    )


def release(conn: Conn, file_id: str) -> None:
    """Give the lease back after a transient failure: the next claim retries at once."""
    conn.execute("UPDATE folder_files SET claimed_until = NULL, claim_id = NULL WHERE id = %s", (file_id,))
