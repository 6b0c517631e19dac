"""The file tools an agent is given while a folder is attached to it (Letta's ``letta_files_core``:
``open_files``, ``grep_files``, ``semantic_search_files``, and ``close_files``).

They run in-process like the other built-ins (:mod:`o.tools.builtin` lists them) and answer with
spans that name the file and its line numbers. What they may show is capped in
:mod:`o.memory.files.views`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from o.errors import InvalidInput
from o.memory.embeddings import EmbedderSource
from o.memory.files import views
from o.store import file_views
from o.store.db import Conn

TOOL_TYPE = "letta_files_core"


class FileToolContext(Protocol):
    @property
    def conn(self) -> Conn: ...

    @property
    def organization_id(self) -> str: ...

    @property
    def agent_id(self) -> str: ...

    @property
    def embedders(self) -> EmbedderSource: ...


def open_files(ctx: FileToolContext, file_requests: list[dict[str, Any]], close_all_others: bool = False) -> str:
    if not isinstance(file_requests, list) or not file_requests:
        raise InvalidInput("file_requests must be a non-empty list of {file_name, offset, length}")
    max_open, _ = file_views.caps(ctx.conn, ctx.agent_id)
    if len(file_requests) > max_open:
        raise InvalidInput(f"at most {max_open} files can be open at once (this agent's max_files_open)")
    if close_all_others:
        views.close(ctx.conn, ctx.agent_id)
    opened, closed = [], []
    for request in file_requests:
        name = str(request.get("file_name") or "")
        offset, length = request.get("offset"), request.get("length")
        closed += views.open_by_name(
            ctx.conn, ctx.agent_id, name, int(offset) if offset else None, int(length) if length else None
        )
        opened.append(name)
    # Letta's behaviour: past the cap the least recently used files close, and the answer names them
    note = f" Closed (least recently used) to stay within {max_open} open files: {', '.join(closed)}." if closed else ""
    return f"Opened {', '.join(opened)}; their lines are in your context under <files>.{note}"


def close_files(ctx: FileToolContext, file_names: list[str]) -> str:
    ids = []
    for name in file_names:
        view = file_views.view_by_name(ctx.conn, ctx.agent_id, str(name))
        if view is None:
            raise InvalidInput(f"no file named {name!r} in the folders attached to this agent")
        ids.append(view["file_id"])
    closed = views.close(ctx.conn, ctx.agent_id, ids)
    return f"Closed {', '.join(closed)}." if closed else "None of those files was open."


def grep_files(ctx: FileToolContext, pattern: str, context_lines: int = 0) -> str:
    return views.grep(ctx.conn, ctx.agent_id, pattern, int(context_lines))


def semantic_search_files(ctx: FileToolContext, query: str, limit: int = 5) -> str:
    return views.search(ctx.conn, ctx.organization_id, ctx.agent_id, query, ctx.embedders, int(limit))


@dataclass(frozen=True)
class FileTool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., str]


_STR = {"type": "string"}
_INT = {"type": "integer"}
SPECS = (
    FileTool(
        "open_files",
        "Open files of your attached folders (or a window of their lines) into your context; only a few are "
        f"open at once (opening more closes the least recently used), each showing up to {views.MAX_WINDOW_LINES} "
        "lines.",
        {
            "type": "object",
            "properties": {
                "file_requests": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "file_name": {**_STR, "description": "The file's name (or folder/name)."},
                            "offset": {**_INT, "description": "First line to show (1-based)."},
                            "length": {**_INT, "description": "How many lines to show."},
                        },
                        "required": ["file_name"],
                    },
                },
                "close_all_others": {"type": "boolean", "description": "Close every other open file first."},
            },
            "required": ["file_requests"],
        },
        open_files,
    ),
    FileTool(
        "close_files",
        "Close open files, removing their lines from your context.",
        {
            "type": "object",
            "properties": {"file_names": {"type": "array", "items": _STR}},
            "required": ["file_names"],
        },
        close_files,
    ),
    FileTool(
        "grep_files",
        "Search the lines of your attached files for a regular expression (case-insensitive); answers file:line: text.",
        {
            "type": "object",
            "properties": {
                "pattern": {**_STR, "description": "A regular expression."},
                "context_lines": {**_INT, "description": "Lines of context around each match (0-5)."},
            },
            "required": ["pattern"],
        },
        grep_files,
    ),
    FileTool(
        "semantic_search_files",
        "Search your attached files by meaning and by words; answers the closest passages with file name and lines.",
        {
            "type": "object",
            "properties": {
                "query": {**_STR, "description": "What to look for."},
                "limit": {**_INT, "description": "How many passages (1-20)."},
            },
            "required": ["query"],
        },
        semantic_search_files,
    ),
)
NAMES = tuple(spec.name for spec in SPECS)
