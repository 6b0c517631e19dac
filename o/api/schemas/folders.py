"""Folders and files in Letta's shapes: ``Folder``, ``FileMetadata``, an agent's file view, and the
folder create/update bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from o.api.schemas.agent_state import letta_embedding_config
from o.api.schemas.common import Request, Response
from o.api.schemas.model_configs import EmbeddingConfigIn
from o.memory.embeddings import config_for_handle

Name = Annotated[str, Field(min_length=1, max_length=500)]
Text = Annotated[str, Field(max_length=100_000)]


class FolderCreate(Request):
    name: Name
    description: Text | None = None
    instructions: Text | None = None
    metadata: dict[str, Any] | None = None
    embedding: Annotated[str, Field(max_length=300)] | None = None
    embedding_config: EmbeddingConfigIn | None = None
    embedding_chunk_size: int | None = Field(default=None, ge=1, le=100_000)

    def fields(self) -> dict[str, Any]:
        out = self.model_dump(exclude={"embedding", "embedding_config", "embedding_chunk_size"})
        if self.embedding_config is not None:
            out["embedding_config"] = self.embedding_config.model_dump(exclude_none=True)
        elif self.embedding is not None:
            out["embedding_config"] = config_for_handle(self.embedding)
        if self.embedding_chunk_size is not None and out.get("embedding_config"):
            out["embedding_config"]["embedding_chunk_size"] = self.embedding_chunk_size
        return out


class FolderUpdate(Request):
    name: Name | None = None
    description: Text | None = None
    instructions: Text | None = None
    metadata: dict[str, Any] | None = None
    embedding_config: EmbeddingConfigIn | None = None

    def changes(self) -> dict[str, Any]:
        out = self.model_dump(exclude_unset=True, exclude={"embedding_config"})
        if out.get("name", "") is None:
            out.pop("name")
        if self.embedding_config is not None:
            out["embedding_config"] = self.embedding_config.model_dump(exclude_none=True)
        return out


class Folder(Response):
    id: str
    name: str
    description: str | None = None
    instructions: str | None = None
    metadata: dict[str, Any] | None = None
    embedding_config: dict[str, Any]
    created_at: datetime
    updated_at: datetime


def folder_object(row: dict[str, Any]) -> Folder:
    return Folder(
        id=row["id"],
        name=row["name"],
        description=row["description"],
        instructions=row["instructions"],
        metadata=row["metadata"],
        embedding_config=letta_embedding_config(row["embedding_config"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


Status = Literal["pending", "parsing", "embedding", "completed", "error"]


class FileMetadata(Response):
    id: str
    source_id: str
    folder_id: str
    file_name: str
    original_file_name: str
    file_type: str
    file_size: int
    processing_status: Status
    error_message: str | None = None
    total_chunks: int | None = None
    chunks_embedded: int | None = None
    content: str | None = None
    created_at: datetime
    updated_at: datetime


def file_object(row: dict[str, Any]) -> FileMetadata:
    return FileMetadata(
        id=row["id"],
        source_id=row["folder_id"],
        folder_id=row["folder_id"],
        file_name=row["file_name"],
        original_file_name=row["original_file_name"],
        file_type=row["file_type"],
        file_size=row["file_size"],
        processing_status=row["processing_status"],
        error_message=row["error_message"],
        total_chunks=row["total_chunks"],
        chunks_embedded=row["chunks_embedded"],
        content=row.get("content"),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class AgentFile(Response):
    id: str
    file_id: str
    file_name: str
    folder_id: str
    folder_name: str
    is_open: bool
    start_line: int | None = None
    end_line: int | None = None
    last_accessed_at: datetime | None = None
    visible_content: str | None = None


class AgentFilesPage(Response):
    files: list[AgentFile]
    next_cursor: str | None = None
    has_more: bool = False
