"""Archives (Letta V1): /v1/archives/ (list, create), /v1/archives/{id} (get, update, delete), its
passages (create, batch create, list, delete), and attaching one to an agent:
/v1/agents/{agent_id}/archives/attach|detach/{archive_id}."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from o.api import errors
from o.api.deps import Db, Embeddings, Org
from o.api.paging import paging
from o.api.schemas.archives import (
    Archive,
    ArchiveCreate,
    ArchivePassage,
    ArchiveUpdate,
    PassageBatchCreate,
    PassageCreate,
)
from o.memory import archives
from o.memory.embeddings import config_for_handle
from o.store.pages import Page

router = APIRouter(prefix="/v1/archives", tags=["archives"], responses=errors.responses(401))
agents_router = APIRouter(prefix="/v1/agents", tags=["archives"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
# 400: a body that is not UTF-8
WRITE = errors.responses(400, 404)
# 502: the archive's embedding endpoint failed
EMBEDS = errors.responses(400, 404, 502)


@router.get("/", response_model=list[Archive])
def list_archives(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=50, default_order="desc"))],
    name: str | None = Query(default=None, max_length=500, description="only archives of this exact name"),
    agent_id: str | None = Query(default=None, max_length=100, description="only archives attached to this agent"),
) -> Any:
    with db.transaction() as conn:
        found = archives.list_archives(conn, org, page, name=name, agent_id=agent_id)
    return [Archive.from_domain(a) for a in found]


@router.post("/", response_model=Archive, responses=errors.responses(400))
def create_archive(body: ArchiveCreate, org: Org, db: Db, embedders: Embeddings) -> Any:
    """A new archive; its embedding model (``embedding_config``, else the ``embedding`` handle, else
    the local model) is fixed for good."""
    if body.embedding_config is not None:
        config: dict[str, Any] | None = body.embedding_config.model_dump(exclude_none=True)
    elif body.embedding is not None:
        config = config_for_handle(body.embedding)
    else:
        config = None
    with db.transaction() as conn:
        archive = archives.create(
            conn, org, body.name, description=body.description, embedding_config=config, embedders=embedders
        )
    return Archive.from_domain(archive)


@router.get("/{archive_id}", response_model=Archive, responses=NOT_FOUND)
def get_archive(archive_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        return Archive.from_domain(archives.get(conn, org, archive_id))


@router.patch("/{archive_id}", response_model=Archive, responses=WRITE)
def update_archive(archive_id: str, body: ArchiveUpdate, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        archive = archives.update(conn, org, archive_id, name=body.name, description=body.description)
    return Archive.from_domain(archive)


@router.delete("/{archive_id}", status_code=status.HTTP_200_OK, responses=NOT_FOUND)
def delete_archive(archive_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        archives.delete(conn, org, archive_id)
    return {}


@router.get("/{archive_id}/passages", response_model=list[ArchivePassage], responses=NOT_FOUND)
def list_archive_passages(
    archive_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
) -> Any:
    with db.transaction() as conn:
        archive = archives.get(conn, org, archive_id)
        found = archives.list_passages(conn, org, archive_id, page)
    return [ArchivePassage.from_domain(p, archive.embedding_config) for p in found]


@router.post("/{archive_id}/passages", response_model=ArchivePassage, responses=EMBEDS)
def create_archive_passage(archive_id: str, body: PassageCreate, org: Org, db: Db, embedders: Embeddings) -> Any:
    """One passage, stored as given (a long text is not split: an archive's passages are the caller's)."""
    with db.transaction() as conn:
        archive = archives.get(conn, org, archive_id)
        (passage,) = archives.insert_passages(conn, org, archive_id, [body.as_input()], embedders=embedders)
    return ArchivePassage.from_domain(passage, archive.embedding_config)


@router.post("/{archive_id}/passages/batch", response_model=list[ArchivePassage], responses=EMBEDS)
def create_archive_passages(archive_id: str, body: PassageBatchCreate, org: Org, db: Db, embedders: Embeddings) -> Any:
    """Passages in order, as one sequence: each is indexed with the words and meaning of its neighbours."""
    with db.transaction() as conn:
        archive = archives.get(conn, org, archive_id)
        stored = archives.insert_passages(
            conn, org, archive_id, [p.as_input() for p in body.passages], embedders=embedders
        )
    return [ArchivePassage.from_domain(p, archive.embedding_config) for p in stored]


@router.delete("/{archive_id}/passages/{passage_id}", status_code=status.HTTP_200_OK, responses=NOT_FOUND)
def delete_archive_passage(archive_id: str, passage_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        archives.delete_passage(conn, org, archive_id, passage_id)
    return {}


@agents_router.patch("/{agent_id}/archives/attach/{archive_id}", responses=NOT_FOUND)
def attach_archive(agent_id: str, archive_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        archives.attach(conn, org, agent_id, archive_id)
    return {}


@agents_router.patch("/{agent_id}/archives/detach/{archive_id}", responses=NOT_FOUND)
def detach_archive(agent_id: str, archive_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        archives.detach(conn, org, agent_id, archive_id)
    return {}
