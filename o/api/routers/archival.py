"""An agent's archival memory (Letta V1): /v1/agents/{agent_id}/archival-memory[...]."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from o.api import errors
from o.api.deps import Db, Embeddings, Org
from o.api.paging import paging
from o.api.schemas.agent_state import letta_embedding_config
from o.api.schemas.common import Request, Response, Timestamp
from o.memory import archival
from o.store.pages import Page

router = APIRouter(
    prefix="/v1/agents/{agent_id}/archival-memory", tags=["agents"], responses=errors.responses(401, 404)
)


class CreateArchivalMemory(Request):
    text: str = Field(min_length=1, max_length=archival.MAX_TEXT_CHARS, description="what to remember")
    tags: list[str] | None = Field(default=None, max_length=100)
    created_at: Timestamp | None = Field(default=None, description="when the memory was formed (default: now)")
    metadata: dict[str, Any] | None = None


class Passage(Response):
    id: str
    text: str
    tags: list[str]
    metadata: dict[str, Any]
    agent_id: str | None
    archive_id: str | None = None
    organization_id: str
    embedding: list[float] | None = None
    embedding_config: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime
    is_deleted: bool = False

    @classmethod
    def from_domain(cls, passage: archival.Passage, embedding_config: dict[str, Any] | None) -> Passage:
        return cls(
            id=passage.id,
            text=passage.text,
            tags=passage.tags,
            metadata=passage.metadata,
            agent_id=passage.agent_id,
            archive_id=passage.archive_id,
            organization_id=passage.organization_id,
            embedding_config=letta_embedding_config(embedding_config) if embedding_config else None,
            created_at=passage.created_at,
            updated_at=passage.updated_at,
        )


class ArchivalMemorySearchResult(Response):
    id: str
    timestamp: str
    content: str
    tags: list[str]
    score: float


class ArchivalMemorySearchResponse(Response):
    results: list[ArchivalMemorySearchResult]
    count: int


@router.get("", response_model=list[Passage])
def list_archival_memory(
    agent_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100, sorting="ascending"))],
    search: str | None = Query(default=None, description="keep passages whose text contains this"),
) -> list[Passage]:
    with db.transaction() as conn:
        config = archival.agent_embedding_config(conn, org, agent_id).model_dump(exclude_none=True)
        passages = archival.list_passages(
            conn,
            org,
            agent_id,
            after=page.after,
            before=page.before,
            limit=page.limit,
            ascending=page.order == "asc",
            text_contains=search,
        )
    return [Passage.from_domain(p, config) for p in passages]


# 502: the agent's embedding endpoint failed
@router.post("", response_model=list[Passage], responses=errors.responses(400, 502))
def create_archival_memory(
    agent_id: str, body: CreateArchivalMemory, org: Org, db: Db, embedders: Embeddings
) -> list[Passage]:
    with db.transaction() as conn:
        passages = archival.insert(
            conn,
            org,
            agent_id,
            body.text,
            tags=body.tags,
            metadata=body.metadata,
            created_at=body.created_at,
            embedders=embedders,
        )
        config = archival.agent_embedding_config(conn, org, agent_id).model_dump(exclude_none=True)
    return [Passage.from_domain(p, config) for p in passages]


@router.get("/search", response_model=ArchivalMemorySearchResponse, responses=errors.responses(502))
def search_archival_memory(
    agent_id: str,
    org: Org,
    db: Db,
    embedders: Embeddings,
    query: str = Query(min_length=1, max_length=10_000),
    tags: list[str] | None = Query(default=None),
    tag_match_mode: Literal["any", "all"] = "any",
    top_k: int | None = Query(default=None, ge=1, le=archival.MAX_TOP_K),
    start_datetime: Timestamp | None = None,
    end_datetime: Timestamp | None = None,
) -> ArchivalMemorySearchResponse:
    with db.transaction() as conn:
        results = archival.search(
            conn,
            org,
            agent_id,
            query,
            top_k=top_k,
            tags=tags,
            tag_match_mode=tag_match_mode,
            start_datetime=start_datetime,
            end_datetime=end_datetime,
            embedders=embedders,
        )
    return ArchivalMemorySearchResponse(results=[ArchivalMemorySearchResult(**r) for r in results], count=len(results))


@router.delete("/{memory_id}")
def delete_archival_memory(agent_id: str, memory_id: str, org: Org, db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        archival.delete(conn, org, agent_id, memory_id)
    return {"message": f"Memory id={memory_id} successfully deleted"}
