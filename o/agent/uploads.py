"""Upload sessions: payloads too large for one API request (API Gateway takes 10 MB, Lambda 6 MB) go
straight to the blob store, and "complete" starts the work on them.

1. :func:`create` records the session (its kind, its exact size, what to do with it) and answers where
   to PUT the bytes: a presigned S3 URL on AWS (signed for exactly ``size`` bytes, SSE-S3, expiring),
   or locally O's own ``PUT /v1/uploads/{id}/content?token=…`` (:func:`receive`), which streams into
   the data dir. Either way the client sends the bytes without the API key.
2. :func:`complete` checks the stored bytes (present, the declared size) and starts the work:

   - ``bundle``: an import as a job (:mod:`o.agent.transfer_jobs`): queued → running → completed
     (``result``: the new agent) | error (``error_message``), polled with ``GET /v1/uploads/{id}``;
   - ``folder_file``: the file joins the folder's ingestion pipeline at once, from the stored bytes
     (``result``: the file; its own ``processing_status`` follows ingestion).

   Completing twice answers the session as it is: nothing starts twice.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from o.agent import folders
from o.agent.file_services import TRANSFERS, FileServices, TransferServices
from o.agent.folders import DuplicateHandling, TooLarge
from o.agent.portable import bundle
from o.errors import Conflict, InvalidInput, NotFound, OError
from o.ids import new_id
from o.memory.files import parsers
from o.memory.files.blobs import Transfer
from o.store import transfers as store
from o.store.db import Database

Kind = Literal["bundle", "folder_file"]
BUNDLE_TYPE = "application/x-msgpack"


@dataclass(frozen=True)
class NewUpload:
    kind: Kind
    size: int
    name: str | None = None  # bundle: a new name for the imported agent
    folder_id: str | None = None
    file_name: str | None = None
    duplicate_handling: DuplicateHandling = "suffix"


@dataclass(frozen=True)
class Created:
    row: dict[str, Any]
    # where to PUT the bytes; None: O's own route, with ``token`` in its URL
    target: Transfer | None
    token: str | None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: Database, services: TransferServices, organization_id: str, new: NewUpload) -> Created:
    upload_id = new_id("upload")
    if new.kind == "bundle":
        if new.size > services.limits.max_bundle_bytes:
            raise TooLarge(f"the bundle is {new.size} bytes; the limit is {services.limits.max_bundle_bytes}")
        key, content_type = f"{TRANSFERS}{organization_id}/{upload_id}", BUNDLE_TYPE
        params: dict[str, Any] = {"name": new.name}
    else:
        folder_id, name = _folder_file(db, services, organization_id, new)
        key, content_type = f"{organization_id}/{folder_id}/{uuid.uuid4()}", parsers.mime_type(name)
        params = {"folder_id": folder_id, "file_name": name, "original_file_name": new.file_name,
                  "file_type": content_type, "duplicate_handling": new.duplicate_handling}  # fmt: skip
    target = services.blobs.upload_target(key, new.size, content_type, services.limits.expires_s)
    token = None if target is not None else secrets.token_urlsafe(32)
    with db.transaction() as conn:
        row = store.insert(
            conn,
            {"id": upload_id, "organization_id": organization_id, "kind": new.kind, "size": new.size,
             "blob_key": key, "token_sha256": token and token_hash(token), "params": params,
             "expires_s": services.limits.expires_s},
        )  # fmt: skip
    return Created(row, target, token)


def _folder_file(db: Database, services: TransferServices, organization_id: str, new: NewUpload) -> tuple[str, str]:
    """(folder id, file name) of a folder file session, checked before any byte is sent."""
    if not new.folder_id:
        raise InvalidInput("folder_id: a folder_file upload names the folder it goes to", field="folder_id")
    name = PurePosixPath((new.file_name or "").replace("\\", "/")).name.strip()
    if not name:
        raise InvalidInput("file_name: a folder_file upload needs the file's name", field="file_name")
    parsers.mime_type(name)  # 415 naming the supported types
    if new.size > services.limits.max_file_bytes:
        raise TooLarge(f"the file is {new.size} bytes; the limit is {services.limits.max_file_bytes}")
    with db.read() as conn:
        folders.require(conn, organization_id, new.folder_id)
    return new.folder_id, name


def get(db: Database, organization_id: str, upload_id: str, *, kind: str = "upload") -> dict[str, Any]:
    """An upload session (``kind="upload"``) or an export of the organization."""
    with db.read() as conn:
        row = store.get(conn, organization_id, upload_id)
    if row is None or (row["kind"] == "export") != (kind == "export"):
        raise NotFound(f"{kind} {upload_id} not found")
    return row


def writable(db: Database, upload_id: str, token: str | None) -> dict[str, Any]:
    """The session O's own PUT URL names, if its token is right and it still waits for its bytes."""
    with db.read() as conn:
        row = store.by_token(conn, upload_id, token_hash(token)) if token else None
    if row is None:
        raise NotFound(f"upload {upload_id} not found (or the URL's token is not its own)")
    if row["status"] != "pending":
        raise Conflict(f"upload {upload_id} is {row['status']}: its bytes were sent already")
    if row["expired"]:
        raise Conflict(f"upload {upload_id} expired at {row['expires_at'].isoformat()}; create a new one")
    return row


def complete(
    db: Database, services: TransferServices, files: FileServices, organization_id: str, upload_id: str
) -> dict[str, Any]:
    """Start the session's work (once); the session as it now is."""
    with db.transaction() as conn:
        row = store.get(conn, organization_id, upload_id, for_update=True)
        if row is None or row["kind"] == "export":
            raise NotFound(f"upload {upload_id} not found")
        if row["status"] != "pending":
            return row  # completed before: nothing starts twice
        _check_bytes(services, row)
        if row["kind"] == "bundle":
            row = store.queue(conn, upload_id)
    if row["kind"] == "bundle":
        services.announce(upload_id)
        return row
    return _file(db, services, files, row)


def _check_bytes(services: TransferServices, row: dict[str, Any]) -> None:
    stored = services.blobs.size(row["blob_key"])
    if stored is None:
        if row["expired"]:
            raise Conflict(f"upload {row['id']} expired before its bytes were sent; create a new one")
        raise Conflict(f"no bytes were sent to upload {row['id']} yet: PUT its {row['size']} bytes to its upload_url")
    if stored != row["size"]:
        raise Conflict(f"upload {row['id']} holds {stored} bytes, not the {row['size']} it declared; create a new one")


def _file(db: Database, services: TransferServices, files: FileServices, row: dict[str, Any]) -> dict[str, Any]:
    """The stored bytes become a file of the folder and join the ingestion pipeline."""
    p = row["params"]
    stored = folders.Stored(p["file_name"], p["original_file_name"] or p["file_name"], p["file_type"], row["blob_key"],
                            row["size"])  # fmt: skip
    try:
        with db.transaction() as conn:
            now = store.get(conn, row["organization_id"], row["id"], for_update=True)
            if now is None or now["status"] != "pending":
                return now or row  # a concurrent complete won
            file, replaced = folders.record_stored(
                conn, row["organization_id"], p["folder_id"], stored, p["duplicate_handling"], files.limits
            )
            done = store.finish(conn, row["id"], {"file_id": file["id"], "file_name": file["file_name"],
                                                   "folder_id": p["folder_id"]})  # fmt: skip
    except OError as exc:
        # the name is taken (error), the quota is full, the folder is gone: said once, the bytes dropped
        with db.transaction() as conn:
            store.fail(conn, row["id"], exc.message)
        services.blobs.delete(row["blob_key"])
        raise
    if file["blob_key"] != row["blob_key"]:  # skip: the folder keeps the file it had
        services.blobs.delete(row["blob_key"])
        return done
    if replaced:
        services.blobs.delete(replaced)
    files.on_upload(file["id"])
    return done


# -- exports: a bundle written to the blob store by a job, fetched from a (presigned) URL ---------------


def start_export(db: Database, services: TransferServices, organization_id: str, agent_id: str) -> dict[str, Any]:
    """Queue an export of the agent's bundle; the export as it is (queued)."""
    export_id = new_id("export")
    with db.transaction() as conn:
        bundle.require_agent(conn, organization_id, agent_id)
        store.insert(
            conn,
            {"id": export_id, "organization_id": organization_id, "kind": "export", "size": 0,
             "blob_key": f"{TRANSFERS}{organization_id}/{export_id}", "token_sha256": None,
             "params": {"agent_id": agent_id}, "expires_s": services.limits.expires_s},
        )  # fmt: skip
        row = store.queue(conn, export_id)
    services.announce(export_id)
    return row


def download_target(services: TransferServices, row: dict[str, Any]) -> Transfer | None:
    """Where a completed export's bytes are fetched: a presigned GET (AWS), or None: O's own route."""
    filename = f"{row['params']['agent_id']}.bundle"
    return services.blobs.download_target(row["blob_key"], filename, services.limits.expires_s)
