"""An agent's core memory blocks: /v1/agents/{agent_id}/core-memory/blocks/..."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from o.agent import lifecycle
from o.api import errors
from o.api.deps import Db, DbOrg, Org
from o.api.paging import paging, slice_page
from o.api.responses import model_json
from o.api.schemas.agent_state import AgentState
from o.api.schemas.blocks import Block, UpdateBlock, block_changes
from o.errors import NotFound
from o.memory import blocks as memory_blocks
from o.store import blocks as block_store
from o.store.pages import Page

router = APIRouter(
    prefix="/v1/agents/{agent_id}/core-memory/blocks", tags=["agents"], responses=errors.responses(401, 404)
)


@router.get("", response_model=list[Block])
def list_agent_blocks(
    agent_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
) -> list[Block]:
    """An agent's blocks in attachment order, paged like every Letta list (SDK iterators send ``after``)."""
    with db.transaction() as conn:
        view = lifecycle.get(conn, org, agent_id)
    return [Block.from_row(b) for b in slice_page(view.blocks, page)]


@router.get("/{block_label}", response_model=Block)
def get_agent_block(agent_id: str, block_label: str, org: DbOrg, db: Db) -> Response:
    with db.read() as conn:
        view = lifecycle.get(conn, org, agent_id)
    for block in view.blocks:
        if block["label"] == block_label:
            return model_json(Block.from_row(block))
    raise NotFound(f"agent {agent_id} has no block labelled {block_label!r}")


# 409: the agent already has a block with that label
@router.patch("/attach/{block_id}", response_model=AgentState, responses=errors.responses(409))
def attach_block(agent_id: str, block_id: str, org: Org, db: Db) -> AgentState:
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id, for_update=True)
        memory_blocks.attach(conn, org, agent_id, block_id)
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


@router.patch("/detach/{block_id}", response_model=AgentState)
def detach_block(agent_id: str, block_id: str, org: Org, db: Db) -> AgentState:
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id, for_update=True)
        memory_blocks.detach(conn, org, agent_id, block_id)
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


@router.patch("/{block_label}", response_model=Block, responses=errors.responses(400, 409))
def update_agent_block(agent_id: str, block_label: str, body: UpdateBlock, org: DbOrg, db: Db) -> Response:
    changes = block_changes(body)
    if block_store.settable_in_one(changes):
        # the common edit (a new value) is one statement: one round trip, no BEGIN/lock/COMMIT
        with db.statement() as conn:
            changed = block_store.set_by_label(conn, org, agent_id, block_label, changes)
        if changed is not None:
            return model_json(Block.from_row(changed))
    # nothing changed, or a new label or limit: the locking way, which also says what was wrong
    with db.transaction() as conn:
        # The locking read finds the block only through an agent of this organization; the agent
        # itself is looked up only to say which of the two is missing.
        current = block_store.lock_by_label(conn, org, agent_id, block_label)
        if current is None:
            lifecycle.require(conn, org, agent_id)
            raise NotFound(f"agent {agent_id} has no block labelled {block_label!r}")
        row = memory_blocks.update_locked(conn, current, changes)
    return model_json(Block.from_row(row))
