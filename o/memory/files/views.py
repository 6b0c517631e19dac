"""What an agent sees of the files of its attached folders: a bounded set of open files (each a
window of lines) compiled into its context, and grep and semantic search across the files.

The caps keep the context from overflowing however many files are attached. They are the agent's
(Letta's ``max_files_open`` and ``per_file_view_window_char_limit``, within ``OPEN_FILES_BOUNDS`` and
``WINDOW_CHARS_BOUNDS``; by default ``MAX_OPEN_FILES`` and ``MAX_WINDOW_CHARS``): at most that many
files open (opening one more closes the least recently used, and says which, as Letta does), each
showing at most ``MAX_WINDOW_LINES`` lines and that many characters.

Semantic search is the hybrid engine archival memory uses (:func:`o.store.search.hybrid_search`):
BM25 over the chunks' words fused with the cosine of their vectors, over the chunks of the folders
attached to the agent, each folder's chunks compared with the query embedded by that folder's model.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from o.errors import InvalidInput, NotFound
from o.memory.embedding_call import embed_texts
from o.memory.embeddings import EmbedderSource, EmbeddingConfig
from o.store import agents as agent_store
from o.store import file_views
from o.store import search as engine
from o.store.db import Conn

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up


# the defaults of an agent's caps (the columns' defaults, schema/022) and the bounds it may set them in
MAX_OPEN_FILES = 5
MAX_WINDOW_CHARS = 12_000
OPEN_FILES_BOUNDS = (1, 50)
WINDOW_CHARS_BOUNDS = (500, 100_000)
MAX_WINDOW_LINES = 200
MAX_LISTED_FILES = 100
MAX_GREP_MATCHES = 50
MAX_SEARCH_RESULTS = 20
# Most chunks the words half of a file search scores (the archival engine's MATCH_BUDGET is 1,000):
# BM25 in SQL costs about 30-70 µs a matched chunk, and a file search runs inside a step. Words
# rarer than this (names, codes, identifiers) are matched; commoner ones count through the vectors.
FILE_MATCH_BUDGET = 100
# The HNSW search width of a file search: pgvector's default, what the vector-only file search had
# (archival search keeps at least 100); it answers 20 candidates for the usual 5 results.
FILE_EF_SEARCH = 40


def open_file(
    conn: Conn, agent_id: str, file_id: str, start_line: int | None = None, lines: int | None = None
) -> list[str]:
    """Open a window of a file (the first lines when no start is given); the names of the files
    closed to stay within the cap, least recently used first."""
    view = file_views.view(conn, agent_id, file_id, for_update=True)
    if view is None:
        raise NotFound(f"file {file_id} is not in a folder attached to agent {agent_id}")
    return _open(conn, agent_id, view, start_line, lines)


def open_by_name(conn: Conn, agent_id: str, file_name: str, start_line: int | None, lines: int | None) -> list[str]:
    view = file_views.view_by_name(conn, agent_id, file_name)
    if view is None:
        raise NotFound(f"no file named {file_name!r} in the folders attached to this agent")
    return _open(conn, agent_id, view, start_line, lines)


def _open(conn: Conn, agent_id: str, view: dict[str, Any], start_line: int | None, lines: int | None) -> list[str]:
    if view["processing_status"] != "completed":
        raise InvalidInput(
            f"file {view['file_name']!r} is not ready to open (processing_status: {view['processing_status']})",
            file_id=view["file_id"],
        )
    start = max(1, start_line or 1)
    count = min(MAX_WINDOW_LINES, max(1, lines or MAX_WINDOW_LINES))
    max_open, _ = file_views.caps(conn, agent_id)
    file_views.set_open(conn, agent_id, view["file_id"], start, start + count - 1)
    opened = file_views.open_views(conn, agent_id)  # least recently used first
    excess = [v["file_id"] for v in opened if v["file_id"] != view["file_id"]][: max(0, len(opened) - max_open)]
    closed = file_views.close(conn, agent_id, excess) if excess else []
    agent_store.touch(conn, agent_id)
    return closed


def close(conn: Conn, agent_id: str, file_ids: list[str] | None = None) -> list[str]:
    """Close files (all when None); the names of those that were open."""
    closed = file_views.close(conn, agent_id, file_ids)
    if closed:
        agent_store.touch(conn, agent_id)
    return closed


def window(content: str | None, start_line: int, end_line: int, max_chars: int = MAX_WINDOW_CHARS) -> str:
    """Lines ``start_line``..``end_line`` numbered as the file tools cite them, within ``max_chars``
    (the agent's ``per_file_view_window_char_limit``)."""
    lines = (content or "").split("\n")
    out: list[str] = []
    size = 0
    for number in range(start_line, min(end_line, len(lines)) + 1):
        text = f"{number}: {lines[number - 1]}"
        if size + len(text) > max_chars:
            out.append(f"[... cut at {max_chars} characters; open from line {number} to read on]")
            break
        out.append(text)
        size += len(text) + 1
    return "\n".join(out)


def render(conn: Conn, agent_id: str) -> str:
    """The ``<files>`` part of the context: the attached files' names and each open file's window
    (empty when no folder is attached)."""
    files = file_views.attached_files(conn, agent_id)
    if not files:
        return ""
    parts = ["<files>", "Files in your attached folders (open them with open_files, search with grep_files "
             "or semantic_search_files):"]  # fmt: skip
    parts += [f"- {f['folder_name']}/{f['file_name']}" for f in files[:MAX_LISTED_FILES]]
    if len(files) > MAX_LISTED_FILES:
        parts.append(f"- ... and {len(files) - MAX_LISTED_FILES} more")
    _, max_chars = file_views.caps(conn, agent_id)
    for view in file_views.open_views(conn, agent_id):
        total = len((view["content"] or "").split("\n"))
        start, end = view["start_line"] or 1, min(view["end_line"] or total, total)
        parts.append(f'<file name="{view["folder_name"]}/{view["file_name"]}" lines="{start}-{end} of {total}">')
        parts.append(window(view["content"], start, end, max_chars))
        parts.append("</file>")
    parts.append("</files>")
    return "\n".join(parts)


def grep(conn: Conn, agent_id: str, pattern: str, context_lines: int = 0) -> str:
    """Lines of the attached files that match the regular expression, as ``file:line: text``."""
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise InvalidInput(f"not a valid regular expression: {exc}") from exc
    context_lines = max(0, min(context_lines, 5))
    out: list[str] = []
    matches = 0
    for f in file_views.attached_files(conn, agent_id):
        lines = (f["content"] or "").split("\n")
        for i, line in enumerate(lines):
            if not regex.search(line):
                continue
            matches += 1
            if matches > MAX_GREP_MATCHES:
                out.append(f"[more than {MAX_GREP_MATCHES} matches; narrow the pattern]")
                return "\n".join(out)
            lo, hi = max(0, i - context_lines), min(len(lines), i + context_lines + 1)
            out += [f"{f['file_name']}:{n + 1}{':' if n == i else '-'} {lines[n]}" for n in range(lo, hi)]
    return "\n".join(out) if out else f"no line matches {pattern!r} in the attached files"


def search_hits(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    query: str,
    embedders: EmbedderSource,
    limit: int = 5,
    *,
    query_vector: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """The chunks of the attached folders' completed files that best match ``query`` (BM25 and
    cosine fused), best first, each with its ``file_name`` and fused ``score``. ``query_vector`` stands
    for the query embedded by every folder's model (a caller that has it already)."""
    limit = max(1, min(limit, MAX_SEARCH_RESULTS))
    if not query or not query.strip():
        raise InvalidInput("query must not be empty")
    scopes: list[file_views.FolderScope] = []
    vectors: dict[tuple[str, int, str | None], np.ndarray] = {}
    for folder in file_views.folder_embeddings(conn, agent_id):
        config = EmbeddingConfig.from_agent(folder["embedding_config"])
        key = (config.embedding_model, config.embedding_dim, config.embedding_endpoint)
        if key not in vectors:
            vectors[key] = (
                query_vector
                if query_vector is not None
                else embed_texts(embedders.for_config(config), [query], config)[0]
            )
        scopes.append(file_views.FolderScope(folder["id"], config.embedding_model, config.embedding_dim, vectors[key]))
    if not scopes:
        return []
    spec = engine.SearchSpec(
        table="file_chunks",
        corpus="files",
        organization_id=organization_id,
        agent_id=agent_id,
        columns=file_views.CHUNK_COLUMNS,
        extra=(file_views.CHUNK_FILE_NAME,),
        folders=scopes,
        match_budget=FILE_MATCH_BUDGET,
        min_ef_search=FILE_EF_SEARCH,
    )
    return engine.hybrid_search(conn, spec, query, top_k=limit, candidates=max(4 * limit, 20))


def search(
    conn: Conn, organization_id: str, agent_id: str, query: str, embedders: EmbedderSource, limit: int = 5
) -> str:
    """The ``semantic_search_files`` answer: the best chunks with file name, lines, page and heading."""
    hits = search_hits(conn, organization_id, agent_id, query, embedders, limit)
    if not hits:
        return f"nothing in the attached files matches {query!r}"
    return "\n\n".join(_cite(h) for h in hits)


def _cite(hit: dict[str, Any]) -> str:
    where = f"{hit['file_name']} lines {hit['start_line']}-{hit['end_line']}"
    if hit["page"] is not None:
        where += f", page {hit['page']}"
    if hit["heading"]:
        where += f", under {hit['heading']!r}"
    return f"[{where}] (score {float(hit['score']):.3f})\n{hit['text']}"
