"""Reading message history: an agent's (GET /v1/agents/{agent_id}/messages) and the organization's
(GET /v1/messages/, GET /v1/messages/{message_id})."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from o.agent import conversations, lifecycle
from o.api import errors
from o.api.deps import Db, DbOrg, Org
from o.api.paging import paging
from o.api.responses import JSONBytes, json_of
from o.api.schemas.messages import LettaMessage, to_letta, to_letta_list
from o.api.serialized import SerializedCache, assembled
from o.errors import InvalidInput, NotFound
from o.store import messages as message_store
from o.store.db import Conn
from o.store.pages import Page

router = APIRouter(prefix="/v1/agents/{agent_id}", tags=["messages"], responses=errors.responses(401, 404))
org_router = APIRouter(prefix="/v1/messages", tags=["messages"], responses=errors.responses(401))


@router.get("/messages", response_model=list[LettaMessage])
def list_messages(
    agent_id: str,
    org: DbOrg,
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
            listed = message_store.list_page(conn, org, agent_id, page, conversation=conversation, versions=True)
        except InvalidInput:
            lifecycle.require(conn, org, agent_id)
            raise
        if not listed:
            lifecycle.require(conn, org, agent_id)
        items = _letta_json(conn, org, listed, use_assistant_message)
    return JSONBytes(b"[" + b",".join(item for item in items if item) + b"]")


# Each listed message's Letta items as JSON (without the list's brackets), by its version: a page is the
# same few hundred messages request after request; reading and shaping them was half a page's CPU. 2 MiB:
# ~10,000 messages of a few hundred bytes
_WRITTEN = SerializedCache(max_bytes=2 << 20)


def _letta_json(conn: Conn, org: str, listed: list[dict[str, Any]], use_assistant_message: bool) -> list[bytes]:
    """The JSON of the messages ``listed`` (their ids and versions), in that order; joined with commas, the
    same bytes as their Letta items' list (inside its brackets)."""
    flag = "assistant" if use_assistant_message else "raw"
    ids = {f"{flag}:{m['version']}:{m['id']}": m["id"] for m in listed}

    def write(missing: list[str]) -> dict[str, tuple[str, bytes]]:
        rows = {row["id"]: row for row in message_store.shown(conn, org, [ids[key] for key in missing])}
        written = {}
        for key in missing:
            row = rows.get(ids[key])
            if row is not None:
                items = pydantic_core.to_json(to_letta(row, use_assistant_message=use_assistant_message))
                written[key] = (f"{flag}:{row['version']}:{row['id']}", items[1:-1])
        return written

    return assembled(_WRITTEN, ids, write)


@org_router.get("/", response_model=list[LettaMessage], responses=errors.responses(404))
def list_org_messages(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100, default_order="desc"))],
    conversation_id: str | None = Query(default=None, max_length=200),
    include_return_message_types: list[str] | None = Query(default=None),
    use_assistant_message: bool = True,
) -> Response:
    """Every agent's messages in the organization, newest first, or one conversation's (an agent's id
    names that agent's own history)."""
    with db.read() as conn:
        agent_id: str | None = None
        conversation: str | None = message_store.ANY_CONVERSATION
        if conversation_id is not None:
            target = conversations.resolve(conn, org, conversation_id, None)
            agent_id, conversation = target.agent_id, target.conversation_id
        rows = message_store.list_page(conn, org, agent_id, page, conversation=conversation)
    listed = to_letta_list(rows, use_assistant_message=use_assistant_message)
    if include_return_message_types:
        listed = [m for m in listed if m["message_type"] in include_return_message_types]
    return json_of(listed)


@org_router.get("/{message_id}", response_model=list[LettaMessage], responses=errors.responses(404))
def retrieve_message(message_id: str, org: Org, db: Db, use_assistant_message: bool = True) -> Response:
    """The message as Letta shows it: one stored message may be several (reasoning, a tool call, …)."""
    with db.read() as conn:
        row = message_store.get(conn, message_id, org)
    if row is None:
        raise NotFound(f"message {message_id} not found")
    return json_of(to_letta_list([row], use_assistant_message=use_assistant_message))
