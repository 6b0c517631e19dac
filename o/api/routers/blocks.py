"""Letta V1 block routes: /v1/blocks/..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from o.agent import lifecycle
from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging, slice_page
from o.api.schemas.agent_state import AgentState
from o.api.schemas.blocks import Block, CreateBlock, UpdateBlock, block_changes
from o.errors import NotFound
from o.memory import blocks as memory_blocks
from o.store import blocks as block_store
from o.store.pages import Page

router = APIRouter(prefix="/v1/blocks", tags=["blocks"], responses=errors.responses(401))


@router.post("/", response_model=Block, responses=errors.responses(400))
def create_block(body: CreateBlock, org: Org, db: Db) -> Block:
    with db.transaction() as conn:
        return Block.from_row(memory_blocks.create(conn, org, body.model_dump(exclude_none=True)))


@router.get("/", response_model=list[Block])
def list_blocks(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging())],
    label: str | None = None,
    templates_only: bool = False,
    identity_id: str | None = None,
    identifier_keys: list[str] | None = Query(default=None),
) -> list[Block]:
    with db.transaction() as conn:
        rows = block_store.list_page(
            conn,
            org,
            page,
            label=label,
            templates_only=templates_only,
            identity_id=identity_id,
            identifier_keys=identifier_keys,
        )
    return [Block.from_row(r) for r in rows]


@router.get("/{block_id}", response_model=Block, responses=errors.responses(404))
def get_block(block_id: str, org: Org, db: Db) -> Block:
    with db.transaction() as conn:
        row = block_store.get(conn, org, block_id)
    if row is None:
        raise NotFound(f"block {block_id} not found")
    return Block.from_row(row)


# 409: a new label that an agent showing the block already has
@router.patch("/{block_id}", response_model=Block, responses=errors.responses(400, 404, 409))
def update_block(block_id: str, body: UpdateBlock, org: Org, db: Db) -> Block:
    with db.transaction() as conn:
        return Block.from_row(memory_blocks.update(conn, org, block_id, block_changes(body)))


@router.delete("/{block_id}", responses=errors.responses(404))
def delete_block(block_id: str, org: Org, db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        if not block_store.delete(conn, org, block_id):
            raise NotFound(f"block {block_id} not found")
    return {"message": f"block {block_id} deleted"}


@router.get("/{block_id}/agents", response_model=list[AgentState], responses=errors.responses(404))
def list_block_agents(
    block_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging())],
) -> list[AgentState]:
    """The agents that show this block (Letta returns full agent states)."""
    with db.transaction() as conn:
        if block_store.get(conn, org, block_id) is None:
            raise NotFound(f"block {block_id} not found")
        ids = [{"id": a} for a in block_store.agents_using(conn, block_id)]
        return [AgentState.from_view(lifecycle.get(conn, org, a["id"])) for a in slice_page(ids, page)]
