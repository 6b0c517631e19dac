"""Edge models of upload sessions (``/v1/uploads/``) and exports (``/v1/exports/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from o.api.schemas.common import INT64_MAX, Request, Response

Status = Literal["pending", "queued", "running", "completed", "error"]


class UploadCreate(Request):
    kind: Literal["bundle", "folder_file"] = Field(
        description="bundle: O's full agent bundle, imported as a job; folder_file: a file for a folder, ingested"
    )
    size: int = Field(ge=1, le=INT64_MAX, description="the payload's exact size in bytes (the URL is signed for it)")
    name: str | None = Field(default=None, min_length=1, max_length=200, description="bundle: a new agent name")
    folder_id: str | None = Field(default=None, min_length=1, max_length=200, description="folder_file: the folder")
    file_name: str | None = Field(default=None, min_length=1, max_length=255, description="folder_file: its name")
    duplicate_handling: Literal["skip", "error", "suffix", "replace"] = Field(
        default="suffix", description="folder_file: what happens when the folder has a file of that name"
    )


class TransferState(Response):
    """An upload session or an export, and where its work is."""

    id: str
    kind: Literal["bundle", "folder_file", "export"]
    status: Status = Field(description="pending (waiting for the bytes) → queued → running → completed | error")
    size: int = Field(description="bytes: declared for an upload, written for a completed export")
    result: dict[str, Any] | None = Field(
        default=None,
        description="completed: a bundle's {agent_id, rows, unset_variables, reused_tools}; a folder file's "
        "{file_id, file_name, folder_id}; an export's {agent_id, size}",
    )
    error_message: str | None = None
    attempts: int = 0
    progress: dict[str, Any] | None = Field(
        default=None,
        description="a bundle import under way (it commits in chunks, the agent hidden until the last): "
        "{frames, rows}, the bundle's frames applied and the rows written so far, by table",
    )
    expires_at: datetime = Field(description="the upload URL (or an export's download URL) is valid until then")
    created_at: datetime
    updated_at: datetime
    upload_url: str | None = Field(default=None, description="create only: PUT the bytes here, without the API key")
    upload_method: Literal["PUT"] | None = None
    upload_headers: dict[str, str] = Field(default_factory=dict, description="headers the PUT must carry as given")
    download_url: str | None = Field(default=None, description="a completed export: GET its bytes here")


def transfer_object(row: dict[str, Any], **extra: Any) -> TransferState:
    size = (row.get("result") or {}).get("size", row["size"]) if row["kind"] == "export" else row["size"]
    return TransferState(
        id=row["id"], kind=row["kind"], status=row["status"], size=size, result=row.get("result"),
        error_message=row.get("error_message"), attempts=row["attempts"], progress=_progress(row),
        expires_at=row["expires_at"], created_at=row["created_at"], updated_at=row["updated_at"], **extra,
    )  # fmt: skip


def _progress(row: dict[str, Any]) -> dict[str, Any] | None:
    saved = row.get("progress")
    if not saved or row["status"] not in ("queued", "running"):
        return None
    return {"frames": saved.get("frame", 0), "rows": (saved.get("result") or {}).get("rows", {})}
