"""O's full bundle of one agent: everything an agent file carries, plus its archival passages with
their vectors, revisions, runs and steps, evolution history, feedback and sleep-time passes.

Sections are registered per table (:data:`o.store.bundle.SCOPES`, in insert order); a section holds
the table's columns (name, type, how the value travels) and then batches of rows, so a 100k-passage
agent streams through both ends in constant memory. A table the exporting server does not have is
absent; a section the importing server has no table for, a column it does not know or of another
type, is refused by name (the bundle comes from a newer O). See :mod:`o.agent.portable.frames` for
the file's framing, version and checksum.

Importing gives every row a new id (same prefix), points every reference (``agent_id``, ``block_id``,
``tool_id``, ``run_id``, ``step_id``, ``message_id``, ``evolution_id``, and any JSON string equal to
an old id) at the new rows, and puts them in the caller's organization. A reference to a row the
bundle does not carry becomes NULL. Tools are the organization's: one of the same name is reused,
and a new one must parse; an MCP tool (``external_mcp``) is attached only where the organization has a
tool of its name (its server registered here), else left out and named in ``skipped_tools``: its
server's address and secrets never travel. Tool variables travel by name only (their values are sealed under the
source server's key); the importer may give values.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO

from o import __version__
from o.agent import revisions
from o.agent.portable import file_bytes, frames
from o.agent.portable.frames import BundleError
from o.errors import InvalidInput, NotFound
from o.memory.files.blobs import BlobStore
from o.store import agents as agent_store
from o.store import bundle as store
from o.store import folders as folder_store
from o.store.bundle import Column
from o.store.db import Conn, Database
from o.store.mcp_servers import MCP_TOOL_TYPE
from o.tools import catalog

# What each section's rows mean may change one day: a reader knows up to this version of each.
SECTION_VERSION = 1
REFERENCES = frozenset(
    {"agent_id", "block_id", "tool_id", "run_id", "step_id", "message_id", "evolution_id", "archive_id"}
    | {"folder_id", "file_id", "conversation_id", "forked_from"}
)
# references to work elsewhere (a Step Functions execution, a task token): meaningless in another stack
_FOREIGN = frozenset({"execution_arn", "task_token"})
# nothing refers to a passage: their ids need no remembering (100k of them would only fill memory)
_UNREFERENCED = frozenset({"passages", "revision_outcomes", "evolution_events"})
# references to rows that come later in the bundle (no foreign key holds them back)
_FORWARD = frozenset({("steps", "message_id")})
# rows written under the importing organization even while an import in chunks keeps the rest in a
# hidden one (:mod:`.chunked`): moving passages and file chunks at the end would insert every vector
# in the HNSW indexes again, and revisions are immutable; nothing reaches them but through their
# agent, archive or folder, which stay hidden till then
UNSTAGED = frozenset({"passages", "file_chunks", "agent_revisions"})


@dataclass
class Imported:
    agent_id: str
    rows: dict[str, int] = field(default_factory=dict)
    # tool variables the agent had: their values are sealed under the source server's key, set them anew
    unset_variables: list[str] = field(default_factory=list)
    # custom tools the organization already had under the same name (attached, not replaced)
    reused_tools: list[str] = field(default_factory=list)
    # files of the agent's folders that came without their original bytes (searchable, not re-processable)
    files_without_bytes: list[str] = field(default_factory=list)
    # MCP tools the agent had whose server this organization does not have: left out (register the
    # server, whose tools then exist by name, and import again, or attach them)
    skipped_tools: list[str] = field(default_factory=list)


def export(
    db: Database, organization_id: str, agent_id: str, *, batch: int = 1000, blobs: BlobStore | None = None
) -> Iterator[bytes]:
    """The bundle's bytes, frame by frame, read from one snapshot; NotFound before the first byte.
    With ``blobs``, the original bytes of the folders' files travel too (:mod:`.file_bytes`)."""
    writer = frames.FrameWriter()
    with db.transaction() as conn:
        store.begin_snapshot(conn)
        agent_store.require(conn, organization_id, agent_id)
        present = [t for t in store.SCOPES if store.table_exists(conn, t)]
        yield writer.frame(
            frames.header(
                exported_at=datetime.now(UTC),
                o_version=__version__,
                agent_id=agent_id,
                sections={t: SECTION_VERSION for t in present},
            )
        )
        for table in present:
            if table == "folder_files" and blobs is not None:
                for body in file_bytes.frames(conn, blobs, agent_id):
                    yield writer.frame(body)
            cols = store.columns(conn, table)
            yield writer.frame(
                {"section": table, "version": SECTION_VERSION, "columns": [[c.name, c.type, c.raw] for c in cols]}
            )
            for rows in store.stream(conn, table, cols, agent_id, batch=batch):
                yield writer.frame({"rows": [list(r) for r in rows]})
    yield writer.trailer()


def read_into(
    conn: Conn,
    organization_id: str,
    stream: BinaryIO,
    *,
    name: str | None = None,
    blobs: BlobStore | None = None,
) -> Imported:
    """Import a bundle into ``conn``'s transaction. Any error raises before the caller commits, so a
    bad bundle leaves nothing behind (file bytes it stored in ``blobs`` are removed again); the
    checksum is verified when the last frame has been read."""
    state = ImportState(conn, organization_id, name, file_bytes.Received(blobs, organization_id))
    try:
        for body in frames.read(stream):
            state.apply(body)
        if state.result is None:
            raise BundleError("the bundle holds no agent")
    except BaseException:
        state.received.discard()
        raise
    state.result.unset_variables = sorted(state.variables)
    return state.result


class ImportState:
    """Where an import is: the section being read, and the ids given so far (old -> new)."""

    def __init__(self, conn: Conn, organization_id: str, name: str | None, received: file_bytes.Received) -> None:
        self.conn = conn
        self.received = received
        self.organization_id = organization_id
        self.name = name
        self.ids: dict[str, str] = {}
        self.section: _Section | None = None
        self.result: Imported | None = None
        self.variables: list[str] = []
        self.started = False
        # new ids are derived from old ones under a namespace of this import
        self.namespace = uuid.uuid4()
        # the hidden organization an import in chunks writes its rows under until its end (None: the
        # caller's, at once)
        self.stage: str | None = None

    def apply(self, body: dict[str, Any]) -> None:
        if not self.started:
            self.started = True  # the header (checked by the reader)
            return
        if "blob" in body:
            self.received.put(body, self.ids)
        elif "section" in body:
            self.section = _Section.open(self.conn, body)
        elif "rows" in body:
            if self.section is None:
                raise BundleError("the bundle has rows before any section")
            self._rows(self.section, body["rows"])
        else:
            raise BundleError(f"the bundle has a frame of unknown kind (keys {sorted(body)})")

    def pass_over(self, body: dict[str, Any]) -> None:
        """A frame an earlier run of the import applied: only which section it opens still matters."""
        if not self.started:
            self.started = True
        elif "section" in body:
            self.section = _Section.open(self.conn, body)

    def _check(self, section: _Section, rows: Any) -> None:
        if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(section.cols) for r in rows):
            raise BundleError(f"the bundle's {section.table} rows do not match its columns")
        if section.table == "agents":
            if self.result is not None or len(rows) != 1:
                raise BundleError("a bundle holds exactly one agent")
        elif self.result is None:
            raise BundleError("the bundle's first section must be its agent")

    def _rows(self, section: _Section, rows: Any) -> None:
        self._check(section, rows)
        if section.table == "agent_tool_env":
            self.variables += [str(r[section.index["key"]]) for r in rows]
            return
        if section.table == "tools":
            rows = self._new_tools(section, rows)
        kept = [self._remap(section, r) for r in rows]
        if section.table == "agent_tools":  # the attachments of the tools left out
            kept = [r for r in kept if r[section.index["tool_id"]] is not None]
        fix = _FIXES.get(section.table)
        if fix is not None:
            kept = [fix(self, section, r) for r in kept]
        if kept:
            store.copy_in(self.conn, section.table, section.cols, kept)
        if self.result is None:
            self.result = Imported(agent_id=kept[0][section.index["id"]])
        self.result.rows[section.table] = self.result.rows.get(section.table, 0) + len(kept)

    def new_id(self, old: str, table: str) -> str:
        """The id a row of the bundle gets: a function of the old one, so a reference to a row that
        comes later in the bundle (a step's ``message_id``) is known before that row is."""
        prefix = old.partition("-")[0] if "-" in old else table
        return f"{prefix}-{uuid.uuid5(self.namespace, old)}"

    def _remap(self, section: _Section, row: list[Any]) -> list[Any]:
        if section.id_index is not None:
            old = row[section.id_index]
            if not isinstance(old, str):
                raise BundleError(f"a {section.table} row has no text id")
            new = self.new_id(old, section.table)
            if section.table not in _UNREFERENCED:
                self.ids[old] = new
            row[section.id_index] = new
        if section.org_index is not None:
            staged = self.stage is not None and section.table not in UNSTAGED
            row[section.org_index] = self.stage if staged else self.organization_id
        for i in section.ref_indexes:
            row[i] = self._reference(section, i, row[i])
        for i in section.foreign_indexes:
            row[i] = None
        if self.ids:
            for i in section.json_indexes:
                row[i] = _remap_json(row[i], self.ids)
        return row

    def _reference(self, section: _Section, index: int, old: Any) -> Any:
        if old is None:
            return None
        if not isinstance(old, str):
            raise BundleError(f"a {section.table} row refers to a row by a non-text id")
        if (section.table, section.cols[index].name) in _FORWARD:
            return self.ids.get(old) or self.new_id(old, section.table)
        # a row the bundle does not carry (a run still going on the source server): no reference
        return self.ids.get(old)

    def _new_tools(self, section: _Section, rows: list[list[Any]]) -> list[list[Any]]:
        """A tool the organization has by name is reused; a new one must be a tool O can run."""
        at = section.index
        existing = store.tool_ids_by_name(self.conn, self.organization_id, [str(r[at["name"]]) for r in rows])
        fresh = []
        for row in rows:
            name = row[at["name"]]
            if name in existing:
                self.ids[row[at["id"]]] = existing[name]
                assert self.result is not None
                self.result.reused_tools.append(name)
                continue
            if row[at["tool_type"]] == MCP_TOOL_TYPE:
                # an MCP tool is its server's, and servers (their addresses and secrets) stay where they
                # are: without a tool of this name here, there is nothing for it to call
                assert self.result is not None
                self.result.skipped_tools.append(name)
                continue
            if row[at["tool_type"]] == "custom":
                try:
                    catalog.resolve_schema(row[at["source_code"]] or "", row[at["json_schema"]], None)
                except InvalidInput as exc:
                    raise BundleError(f"the bundle's tool {name!r} cannot be used: {exc.message}", tool=name) from exc
            fresh.append(row)
        return fresh


def _remap_json(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return ids.get(value, value)
    if isinstance(value, list):
        return [_remap_json(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _remap_json(v, ids) for k, v in value.items()}
    return value


@dataclass
class _Section:
    table: str
    cols: list[Column]
    index: dict[str, int]
    id_index: int | None
    org_index: int | None
    ref_indexes: list[int]
    foreign_indexes: list[int]
    json_indexes: list[int]

    @classmethod
    def open(cls, conn: Conn, body: dict[str, Any]) -> _Section:
        table = _known_table(conn, body)
        cols = _columns(conn, table, body.get("columns"))
        index = {c.name: i for i, c in enumerate(cols)}
        id_col = index.get("id") if any(c.name == "id" and c.type == "text" for c in cols) else None
        return cls(
            table=table,
            cols=cols,
            index=index,
            id_index=id_col,
            org_index=index.get("organization_id"),
            ref_indexes=[i for n, i in index.items() if n in REFERENCES],
            foreign_indexes=[i for n, i in index.items() if n in _FOREIGN],
            json_indexes=[i for i, c in enumerate(cols) if c.type in ("jsonb", "json")],
        )


def _known_table(conn: Conn, body: dict[str, Any]) -> str:
    table = body.get("section")
    if not isinstance(table, str) or table not in store.SCOPES:
        raise BundleError(f"the bundle has a section {table!r} this server does not know (made by a newer O?)")
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version > SECTION_VERSION:
        raise BundleError(f"the bundle's {table} section is version {version!r}; this server reads up to 1")
    if not store.table_exists(conn, table):
        raise BundleError(f"this server has no table for the bundle's {table} section")
    return table


def _columns(conn: Conn, table: str, declared: Any) -> list[Column]:
    """The section's columns as the bundle declares them, each one this server's table has, of the
    same type; how a value travels is the bundle's (raw bytes are Postgres' own binary form)."""
    if not isinstance(declared, list) or not declared:
        raise BundleError(f"the bundle's {table} section declares no columns")
    here = {c.name: c for c in store.columns(conn, table)}
    cols = []
    for entry in declared:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            raise BundleError(f"the bundle's {table} section has a malformed column {entry!r}")
        name, type_name, raw = entry
        if name not in here:
            raise BundleError(f"the bundle's column {table}.{name} is not known to this server (made by a newer O?)")
        if here[name].type != type_name:
            raise BundleError(f"the bundle's column {table}.{name} is {type_name!r}; here it is {here[name].type!r}")
        cols.append(Column(name, type_name, bool(raw)))
    if len({c.name for c in cols}) != len(cols):
        raise BundleError(f"the bundle's {table} section names a column twice")
    return cols


def _rename(state: ImportState, section: _Section, row: list[Any]) -> list[Any]:
    if state.name is not None:
        row[section.index["name"]] = state.name
    return row


def _rehash(state: ImportState, section: _Section, row: list[Any]) -> list[Any]:
    """A revision's config names tool and block ids, which were just given new values."""
    del state
    at = section.index
    if "config" in at and "config_hash" in at and isinstance(row[at["config"]], dict):
        row[at["config_hash"]] = revisions.config_hash(row[at["config"]])
    return row


def _free_folder_name(state: ImportState, section: _Section, row: list[Any]) -> list[Any]:
    """A folder's name is unique in its organization: an imported one that is taken gets a suffix."""
    at = section.index["name"]
    row[at] = folder_store.free_name(state.conn, state.organization_id, str(row[at]))
    return row


def _own_bytes(state: ImportState, section: _Section, row: list[Any]) -> list[Any]:
    """The copy's bytes are the ones the bundle carried, stored anew (it never shares or deletes the
    source's blob); without them it keeps its parsed text and chunks and an empty key."""
    at = section.index["blob_key"]
    row[at] = state.received.key_for(str(row[at]))
    if not row[at] and state.result is not None:
        state.result.files_without_bytes.append(str(row[section.index["file_name"]]))
    return row


_FIXES: dict[str, Callable[[ImportState, _Section, list[Any]], list[Any]]] = {
    "agents": _rename,
    "agent_revisions": _rehash,
    "folders": _free_folder_name,
    "folder_files": _own_bytes,
}


def require_agent(conn: Conn, organization_id: str, agent_id: str) -> None:
    """NotFound unless the organization has the agent (checked before a stream starts)."""
    if agent_store.get(conn, organization_id, agent_id) is None:
        raise NotFound(f"agent {agent_id} not found")
