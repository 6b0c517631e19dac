"""Search across the organization's agents: POST /v1/messages/search and POST /v1/passages/search."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field

from o.agent import conversations
from o.api import errors
from o.api.deps import Db, Embeddings, Org
from o.api.routers.archival import Passage
from o.errors import InvalidInput
from o.memory import org_search, recall

messages_router = APIRouter(prefix="/v1/messages", tags=["messages"], responses=errors.responses(401))
passages_router = APIRouter(prefix="/v1/passages", tags=["passages"], responses=errors.responses(401))
# 502: an agent's embedding endpoint failed
SEARCH_ERRORS = errors.responses(400, 404, 502)
Query = Annotated[str, Field(min_length=1, max_length=10_000)]
AnId = Annotated[str, Field(min_length=1, max_length=100)]


class MessageSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Query
    agent_id: AnId | None = None
    conversation_id: AnId | None = None
    limit: int = Field(default=50, ge=1, le=org_search.MAX_LIMIT)
    search_mode: Literal["vector", "fts", "hybrid"] = "hybrid"
    start_date: datetime | None = None
    end_date: datetime | None = None


class PassageSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Annotated[str, Field(max_length=10_000)] | None = None
    agent_id: AnId | None = None
    archive_id: AnId | None = None
    limit: int = Field(default=50, ge=1, le=org_search.MAX_LIMIT)
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=200)]], Field(max_length=100)] | None = None
    tag_match_mode: Literal["any", "all"] = "any"
    start_date: datetime | None = None
    end_date: datetime | None = None


_MESSAGE_TYPES = {"system": "system_message", "user": "user_message", "assistant": "assistant_message"}


def message_result(row: dict[str, Any]) -> dict[str, Any]:
    """A message as Letta's message search results show it (with its agent and id)."""
    content = recall.searchable_text(row) or row.get("text") or ""
    return {
        "message_type": _MESSAGE_TYPES[row["role"]],
        "message_id": row["id"],
        "agent_id": row["agent_id"],
        "created_at": row["created_at"],
        "content": content,
        "conversation_id": row.get("conversation_id"),
    }


@messages_router.post("/search", responses=SEARCH_ERRORS)
def search_messages(body: MessageSearch, org: Org, db: Db, embedders: Embeddings) -> Any:
    """The organization's messages that best match the query (hybrid: BM25 and vectors), best first."""
    agent_id = body.agent_id
    with db.transaction() as conn:
        if body.conversation_id is not None:
            conversation = conversations.require(conn, org, body.conversation_id)
            if agent_id is not None and conversation["agent_id"] != agent_id:
                raise InvalidInput(f"conversation_id: {body.conversation_id} is not a conversation of agent {agent_id}")
            agent_id = conversation["agent_id"]
        rows = org_search.search_messages(
            conn,
            org,
            body.query,
            embedders=embedders,
            agent_id=agent_id,
            limit=body.limit,
            mode=body.search_mode,
            start=body.start_date,
            end=body.end_date,
            conversation_id=body.conversation_id,
        )
    return jsonable_encoder([message_result(r) for r in rows])


@passages_router.post("/search", responses=SEARCH_ERRORS)
def search_passages(body: PassageSearch, org: Org, db: Db, embedders: Embeddings) -> Any:
    """The organization's archival passages that best match the query, best first; without a query, the newest
    passages that pass the filters."""
    if body.archive_id is not None:
        raise InvalidInput("archive_id: O keeps archival memory per agent and has no archives to search by")
    with db.transaction() as conn:
        hits = org_search.search_passages(
            conn,
            org,
            body.query,
            embedders=embedders,
            agent_id=body.agent_id,
            limit=body.limit,
            tags=body.tags or (),
            tag_match_mode=body.tag_match_mode,
            start=body.start_date,
            end=body.end_date,
        )
    return jsonable_encoder(
        [
            {
                # without embedding_config: what an agent of another embedding model needs is on the agent
                "passage": Passage.from_domain(hit.passage, None),
                "score": hit.score,
                "metadata": {"lexical_rank": hit.lexical_rank, "vector_rank": hit.vector_rank},
            }
            for hit in hits
        ]
    )
