"""Folders (Letta's data sources) and their files, and attaching folders to agents.

An upload keeps the original bytes in the blob store before anything else (a failed parse loses
nothing, and ``replace`` processes the file again), then records the file ``pending``: the
ingestion worker (:mod:`o.memory.files.ingest`) parses, chunks and embeds it. Attaching a folder
gives the agent a view of each of its files and the file tools (:mod:`o.tools.file_tools`);
detaching the last folder takes the tools away again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from o.agent.file_services import FileLimits
from o.errors import Conflict, InvalidInput, NotFound, OError
from o.ids import new_id
from o.memory.embeddings import EmbeddingConfig
from o.memory.files import parsers
from o.memory.files.blobs import BlobStore
from o.store import agents as agent_store
from o.store import files as file_store
from o.store import folders as folder_store
from o.store import tools as tool_store
from o.store.db import Conn, Database
from o.tools import base, file_tools

DuplicateHandling = Literal["skip", "error", "suffix", "replace"]
# where a file too large for a direct upload goes (o/agent/uploads.py)
SESSIONS = "/v1/uploads/"


class TooLarge(OError):
    status_code = 413
    code = "payload_too_large"


@dataclass(frozen=True)
class Upload:
    file_name: str
    content_type: str | None
    data: bytes


def require(conn: Conn, organization_id: str, folder_id: str, *, for_update: bool = False) -> dict[str, Any]:
    folder = folder_store.get(conn, organization_id, folder_id, for_update=for_update)
    if folder is None:
        raise NotFound(f"folder {folder_id} not found")
    return folder


def create(conn: Conn, organization_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    config = fields.get("embedding_config") or EmbeddingConfig.default().model_dump(exclude_none=True)
    row = folder_store.insert(
        conn,
        {
            "id": new_id("source"),
            "organization_id": organization_id,
            "name": fields["name"],
            "description": fields.get("description"),
            "instructions": fields.get("instructions"),
            "metadata": fields.get("metadata") or {},
            "embedding_config": config,
        },
    )
    if row is None:
        raise Conflict(f"a folder named {fields['name']!r} exists already", name=fields["name"])
    return row


def update(conn: Conn, organization_id: str, folder_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    folder = require(conn, organization_id, folder_id, for_update=True)
    config = changes.get("embedding_config")
    if config is not None and config != folder["embedding_config"] and file_store.stored_in(conn, folder_id):
        raise Conflict("the folder's files are embedded with its current model; delete them before changing it")
    row = folder_store.update(conn, organization_id, folder_id, changes)
    if row is None:
        raise Conflict(f"a folder named {changes['name']!r} exists already", name=changes["name"])
    for agent_id in folder_store.attached_agent_ids(conn, folder_id):
        agent_store.touch(conn, agent_id)
    return row


def delete(db: Database, blobs: BlobStore, organization_id: str, folder_id: str) -> None:
    with db.transaction() as conn:
        require(conn, organization_id, folder_id, for_update=True)
        keys = file_store.blob_keys(conn, folder_id)
        agents = folder_store.attached_agent_ids(conn, folder_id)
        folder_store.delete(conn, organization_id, folder_id)
        for agent_id in agents:
            _drop_file_tools_if_unused(conn, organization_id, agent_id)
            agent_store.touch(conn, agent_id)
    for key in keys:  # after the commit: a rolled-back delete must still find its files
        if key:  # "" for a file imported without its bytes
            blobs.delete(key)


# -- files ----------------------------------------------------------------------------------------------


def upload(
    db: Database,
    blobs: BlobStore,
    organization_id: str,
    folder_id: str,
    upload: Upload,
    *,
    duplicate_handling: DuplicateHandling = "suffix",
    limits: FileLimits = FileLimits(),
) -> tuple[dict[str, Any], bool]:
    """Store the bytes, then the file row; (the file, whether it needs processing)."""
    name = PurePosixPath(upload.file_name.replace("\\", "/")).name.strip()
    if not name:
        raise InvalidInput("the file needs a name")
    file_type = parsers.mime_type(name)  # 415 naming the supported types
    if len(upload.data) > limits.max_upload_bytes:
        raise TooLarge(
            f"the file is over the limit of {limits.max_upload_bytes} bytes for a direct upload; send it through "
            f"an upload session: POST {SESSIONS} with kind 'folder_file'",
            upload_route=SESSIONS,
        )
    with db.read() as conn:
        require(conn, organization_id, folder_id)
    key = f"{organization_id}/{folder_id}/{uuid.uuid4()}"
    blobs.put(key, upload.data, file_type)
    try:
        with db.transaction() as conn:
            stored = Stored(name, upload.file_name, file_type, key, len(upload.data))
            row, replaced = record_stored(conn, organization_id, folder_id, stored, duplicate_handling, limits)
    except BaseException:
        blobs.delete(key)
        raise
    if row["blob_key"] != key:  # skipped: the new bytes are not needed
        blobs.delete(key)
        return row, False
    if replaced:
        blobs.delete(replaced)
    return row, True


@dataclass(frozen=True)
class Stored:
    """A file's bytes already in the blob store (under ``blob_key``), to be recorded in a folder."""

    name: str
    original_name: str
    file_type: str
    blob_key: str
    size: int


def record_stored(
    conn: Conn,
    organization_id: str,
    folder_id: str,
    stored: Stored,
    handling: DuplicateHandling,
    limits: FileLimits,
) -> tuple[dict[str, Any], str | None]:
    """Record bytes already stored (a direct upload, or an upload session's) as a file of the folder,
    within the organization's quota; (the file row, the blob key it replaced). The file's blob_key is
    not ``stored.blob_key`` when ``skip`` kept an existing file. The caller announces the file to
    ingestion after its transaction commits."""
    row, replaced = _record(conn, organization_id, folder_id, stored, handling)
    if file_store.stored_bytes(conn, organization_id) > limits.org_quota_bytes:
        raise TooLarge(
            f"the organization's files would take more than its storage quota of {limits.org_quota_bytes} "
            "bytes; delete files first",
            quota_bytes=limits.org_quota_bytes,
        )
    return row, replaced


def _record(
    conn: Conn,
    organization_id: str,
    folder_id: str,
    stored: Stored,
    handling: DuplicateHandling,
) -> tuple[dict[str, Any], str | None]:
    require(conn, organization_id, folder_id, for_update=True)  # one upload per folder at a time: names stay unique
    name, key, file_type = stored.name, stored.blob_key, stored.file_type
    existing = file_store.by_name(conn, folder_id, name)
    if existing is not None:
        if handling == "skip":
            return existing, None
        if handling == "error":
            raise Conflict(f"folder {folder_id} has a file named {name!r} already", file_name=name)
        if handling == "replace":
            old = existing["blob_key"] or None
            row = file_store.reset(conn, existing["id"], file_type=file_type, file_size=stored.size, blob_key=key)
            return row, old
        name = _free_name(conn, folder_id, name)
    row = file_store.insert(
        conn,
        {
            "id": new_id("file"),
            "organization_id": organization_id,
            "folder_id": folder_id,
            "file_name": name,
            "original_file_name": stored.original_name,
            "file_type": file_type,
            "file_size": stored.size,
            "blob_key": key,
        },
    )
    return row, None


def _free_name(conn: Conn, folder_id: str, name: str) -> str:
    """``report.pdf`` → ``report_(1).pdf``, the first number not taken (Letta's suffix)."""
    path = PurePosixPath(name)
    stem, suffix = path.stem, path.suffix
    taken = file_store.names_like(conn, folder_id, stem + "_(", ")" + suffix)
    n = 1
    while f"{stem}_({n}){suffix}" in taken:
        n += 1
    return f"{stem}_({n}){suffix}"


def require_file(
    conn: Conn, organization_id: str, folder_id: str, file_id: str, *, content: bool = False
) -> dict[str, Any]:
    row = file_store.get(conn, organization_id, file_id, content=content)
    if row is None or row["folder_id"] != folder_id:
        raise NotFound(f"file {file_id} not found in folder {folder_id}")
    return row


def delete_file(db: Database, blobs: BlobStore, organization_id: str, folder_id: str, file_id: str) -> None:
    with db.transaction() as conn:
        require(conn, organization_id, folder_id)
        gone = file_store.delete(conn, organization_id, folder_id, file_id)
        if gone is None:
            raise NotFound(f"file {file_id} not found in folder {folder_id}")
        for agent_id in folder_store.attached_agent_ids(conn, folder_id):
            agent_store.touch(conn, agent_id)
    if gone["blob_key"]:
        blobs.delete(gone["blob_key"])


# -- agents -----------------------------------------------------------------------------------------------


def attach(conn: Conn, organization_id: str, agent_id: str, folder_id: str) -> None:
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    require(conn, organization_id, folder_id)
    folder_store.attach(conn, agent_id, folder_id)
    for record in base.ensure(conn, organization_id, names=file_tools.NAMES).values():
        tool_store.attach(conn, agent_id, record["id"])
    agent_store.touch(conn, agent_id)


def detach(conn: Conn, organization_id: str, agent_id: str, folder_id: str) -> None:
    agent_store.require(conn, organization_id, agent_id, for_update=True)
    require(conn, organization_id, folder_id)
    folder_store.detach(conn, agent_id, folder_id)
    _drop_file_tools_if_unused(conn, organization_id, agent_id)
    agent_store.touch(conn, agent_id)


def _drop_file_tools_if_unused(conn: Conn, organization_id: str, agent_id: str) -> None:
    if folder_store.attached_ids(conn, agent_id):
        return
    for name in file_tools.NAMES:
        record = tool_store.get_by_name(conn, organization_id, name)
        if record is not None and base.is_base(record):
            tool_store.detach(conn, agent_id, record["id"])
