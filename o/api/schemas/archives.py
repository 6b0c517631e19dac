"""Archives in Letta's shapes: ``Archive``, the create/update bodies, and passages written to an archive."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from o.api.schemas.agent_state import letta_embedding_config
from o.api.schemas.common import Request, Response, Timestamp
from o.api.schemas.model_configs import EmbeddingConfigIn
from o.memory import archival
from o.memory.archives import MAX_BATCH
from o.memory.archives import Archive as ArchiveRecord

Name = Annotated[str, Field(min_length=1, max_length=500)]
Description = Annotated[str, Field(max_length=10_000)]


class ArchiveCreate(Request):
    name: Name
    description: Description | None = None
    embedding: Annotated[str, Field(min_length=1, max_length=300)] | None = Field(
        default=None, description="embedding model handle, e.g. 'openai/text-embedding-3-small'"
    )
    embedding_config: EmbeddingConfigIn | None = None


class ArchiveUpdate(Request):
    name: Name | None = None
    description: Description | None = None


class Archive(Response):
    id: str
    name: str
    description: str | None = None
    organization_id: str
    embedding_config: dict[str, Any]
    metadata: dict[str, Any]
    vector_db_provider: Literal["native"] = "native"
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, archive: ArchiveRecord) -> Archive:
        return cls(
            id=archive.id,
            name=archive.name,
            description=archive.description,
            organization_id=archive.organization_id,
            embedding_config=letta_embedding_config(archive.embedding_config),
            metadata=archive.metadata,
            created_at=archive.created_at,
            updated_at=archive.updated_at,
        )


class PassageCreate(Request):
    text: Annotated[str, Field(min_length=1, max_length=archival.MAX_TEXT_CHARS)]
    created_at: Timestamp | None = Field(default=None, description="when the passage was formed (default: now)")
    metadata: dict[str, Any] | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)] | None = None

    def as_input(self) -> archival.PassageInput:
        return archival.PassageInput(self.text, self.tags or (), self.metadata or {}, self.created_at)


class PassageBatchCreate(Request):
    passages: Annotated[list[PassageCreate], Field(min_length=1, max_length=MAX_BATCH)]


class ArchivePassage(Response):
    id: str
    text: str
    archive_id: str | None
    organization_id: str
    tags: list[str]
    metadata: dict[str, Any]
    embedding_config: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    is_deleted: bool = False

    @classmethod
    def from_domain(cls, passage: archival.Passage, embedding_config: dict[str, Any]) -> ArchivePassage:
        return cls(
            id=passage.id,
            text=passage.text,
            archive_id=passage.archive_id,
            organization_id=passage.organization_id,
            tags=passage.tags,
            metadata=passage.metadata,
            embedding_config=letta_embedding_config(embedding_config),
            created_at=passage.created_at,
            updated_at=passage.updated_at,
        )
