"""Reading an agent's message history: GET /v1/agents/{agent_id}/messages."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.responses import Response

from o.agent import conversations, lifecycle
from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging
from o.api.responses import json_of
from o.api.schemas.messages import LettaMessage, to_letta_list
from o.errors import InvalidInput
from o.store import messages as message_store
from o.store.pages import Page

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["messages"], responses=errors.responses(401, 404))


@router.get("/messages", response_model=list[LettaMessage])
def list_messages(
    agent_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100, default_order="desc"))],
    use_assistant_message: bool = True,
    conversation_id: str | None = None,
) -> Response:
    """The agent's own history (the ``default`` conversation), or that of one of its conversations."""
    with db.read() as conn:
        conversation = None
        if conversation_id not in (None, conversations.DEFAULT):
            conversation = conversations.resolve(conn, org, conversation_id, agent_id).conversation_id
        # The page query is scoped to the organization's agent; only when it finds nothing (or
        # rejects a cursor) is the agent looked up, so a missing agent is a 404, not an empty list.
        try:
            rows = message_store.list_page(conn, org, agent_id, page, conversation=conversation)
        except InvalidInput:
            lifecycle.require(conn, org, agent_id)
            raise
        if not rows:
            lifecycle.require(conn, org, agent_id)
    return json_of(to_letta_list(rows, use_assistant_message=use_assistant_message))
