"""Conversations of an agent: /v1/conversations/ (create, list), /{id} (get, update, delete), /{id}/cancel,
/fork, /recompile, /compact, /messages (list, send) and /stream (resume).

``default`` with ``agent_id`` (or an agent's id in place of the conversation's, as Letta still accepts)
names the agent's own history, the one the agent-level message routes read and write.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from o.agent import conversations, lifecycle, overview, runner
from o.agent import runs as run_api
from o.agent.engine import Engine
from o.api import errors
from o.api.deps import AgentEngine, Db, Org
from o.api.paging import paging
from o.api.responses import json_of
from o.api.routers import send
from o.api.routers.context import CompactionResponse, CompactionSettings
from o.api.schemas.conversations import (
    Conversation,
    ConversationCreate,
    ConversationSend,
    ConversationStream,
    ConversationUpdate,
    conversation_object,
    llm_overrides,
)
from o.api.schemas.messages import LettaMessage, to_letta_list
from o.api.schemas.runs import LettaResponse
from o.errors import NotFound
from o.store import conversations as conversation_store
from o.store import messages as message_store
from o.store.db import Database
from o.store.pages import Page

router = APIRouter(prefix="/v1/conversations", tags=["conversations"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
WRITE = errors.responses(400, 404, 409)
SORTABLE = ("created_at", "last_message_at", "last_run_completion")
COMPACT = errors.responses(400, 404, 409, 502)
AgentOfDefault = Annotated[str | None, Query(description="the agent, with conversation_id 'default'")]


class ConversationCompact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agent_id: str | None = None
    compaction_settings: CompactionSettings | None = None


@router.post("/", response_model=Conversation, responses=WRITE)
def create_conversation(agent_id: str, org: Org, db: Db, body: ConversationCreate | None = None) -> Any:
    fields = (body or ConversationCreate()).model_dump(mode="json", exclude_none=True)
    with db.transaction() as conn:
        agent = lifecycle.require(conn, org, agent_id)
        fields["llm_overrides"] = llm_overrides(agent["llm_config"], fields)
        row = conversations.create(conn, org, agent_id, fields)
    return conversation_object(row, [])


@router.get("/", response_model=list[Conversation], responses=errors.responses(400, 404))
def list_conversations(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=50, default_order="desc", sortable=SORTABLE))],
    agent_id: str | None = None,
    archive_status: Literal["unarchived", "archived", "all"] = "unarchived",
    summary_search: str | None = None,
) -> Any:
    if page.order_by == "last_run_completion":
        # a run completes after its send; the send's time orders conversations the same way
        page = Page(page.before, page.after, page.limit, page.order, "last_message_at")
    with db.transaction() as conn:
        rows = conversations.list_page(
            conn, org, page, agent_id=agent_id, archive_status=archive_status, summary_search=summary_search
        )
    return [conversation_object(r) for r in rows]


@router.get("/{conversation_id}", response_model=Conversation, responses=NOT_FOUND)
def retrieve_conversation(conversation_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, None)
        if target.row is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return conversation_object(target.row, conversations.in_context_ids(conn, target))


@router.patch("/{conversation_id}", response_model=Conversation, responses=WRITE)
def update_conversation(conversation_id: str, body: ConversationUpdate, org: Org, db: Db) -> Any:
    changes = body.model_dump(mode="json", exclude_unset=True)
    with db.transaction() as conn:
        row = conversations.require(conn, org, conversation_id, for_update=True)
        if {"model", "model_settings", "context_window_limit"} & set(changes):
            agent = lifecycle.require(conn, org, row["agent_id"])
            changes["llm_overrides"] = llm_overrides(agent["llm_config"], {**row, **changes})
        if changes.get("last_message_at") is None:
            changes.pop("last_message_at", None)  # the column always has a time
        if changes.get("archived") is None:
            changes.pop("archived", None)
        row = conversations.update(conn, org, conversation_id, changes)
        return conversation_object(row, conversation_store.in_context_ids(conn, row["agent_id"], row["id"]))


@router.delete("/{conversation_id}", status_code=status.HTTP_200_OK, responses=errors.responses(404, 409))
def delete_conversation(conversation_id: str, org: Org, db: Db) -> Any:
    """The conversation leaves the API; its messages stay in the agent's recall memory."""
    with db.transaction() as conn:
        conversations.delete(conn, org, conversation_id)
    return {}


@router.post("/{conversation_id}/cancel", response_model=dict[str, Any], responses=errors.responses(400, 404))
def cancel_conversation(
    conversation_id: str, org: Org, db: Db, engine: AgentEngine, agent_id: AgentOfDefault = None
) -> Any:
    """Stop the conversation's running (and queued) runs: ``{run_id: "cancelled"}``, empty when none runs."""
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, agent_id)
        run_ids = conversations.active_runs(conn, target)
    if not run_ids:
        return {}
    touched = runner.cancel(engine.launcher, db, org, target.agent_id, run_ids)
    return {run.id: "cancelled" for run in touched}


@router.post("/{conversation_id}/fork", response_model=Conversation, responses=WRITE)
def fork_conversation(
    conversation_id: str,
    org: Org,
    db: Db,
    agent_id: AgentOfDefault = None,
    hidden: bool = False,
    message_id: str | None = None,
) -> Any:
    with db.transaction() as conn:
        source = conversations.resolve(conn, org, conversation_id, agent_id)
        row = conversations.fork(conn, org, source, message_id=message_id, hidden=hidden)
        return conversation_object(row, conversation_store.in_context_ids(conn, row["agent_id"], row["id"]))


@router.post("/{conversation_id}/recompile", response_model=str, responses=errors.responses(400, 404))
def recompile_conversation(
    conversation_id: str, org: Org, db: Db, dry_run: bool = False, body: ConversationCompact | None = None
) -> Any:
    """The system prompt the conversation's next step reads, compiled from the agent's current memory."""
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, body.agent_id if body else None)
        return conversations.recompile(conn, org, target, dry_run=dry_run)


@router.post("/{conversation_id}/compact", response_model=CompactionResponse, responses=COMPACT)
def compact_conversation(
    conversation_id: str, org: Org, db: Db, engine: AgentEngine, body: ConversationCompact | None = None
) -> CompactionResponse:
    """Summarise the conversation's oldest in-context messages now: its own summary (others keep theirs)."""
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, body.agent_id if body else None)
    settings = body.compaction_settings if body else None
    done = overview.compact(
        db,
        engine.llm,
        org,
        target.agent_id,
        engine.deps().context,
        mode=settings.mode if settings else None,
        keep_share=settings.sliding_window_percentage if settings else None,
        conversation_id=target.conversation_id,
    )
    return CompactionResponse(
        num_messages_before=done.num_messages_before, num_messages_after=done.num_messages_after, summary=done.summary
    )


@router.get("/{conversation_id}/messages", response_model=list[LettaMessage], responses=errors.responses(400, 404))
def list_conversation_messages(
    conversation_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100, default_order="desc"))],
    agent_id: AgentOfDefault = None,
    use_assistant_message: bool = True,
) -> Response:
    """The conversation's whole history (in context or not), newest first by default."""
    with db.read() as conn:
        target = conversations.resolve(conn, org, conversation_id, agent_id)
        rows = message_store.list_page(conn, org, target.agent_id, page, conversation=target.conversation_id)
    return json_of(to_letta_list(rows, use_assistant_message=use_assistant_message))


def _begin(
    db: Database, org: str, conversation_id: str, body: ConversationSend, engine: Engine, if_busy: str
) -> run_api.Started:
    inputs, decisions = body.parsed()
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, body.agent_id)
        if decisions:
            return run_api.approve(conn, org, target.agent_id, decisions, conversation_id=target.conversation_id)
        conversations.open_for_sending(target)
        started = run_api.start(
            conn,
            org,
            target.agent_id,
            inputs,
            body.run_request(engine),
            background=body.background,
            wait=if_busy != "reject",
            conversation_id=target.conversation_id,
        )
        conversations.sent(conn, target)
        return started


@router.post(
    "/{conversation_id}/messages",
    response_model=LettaResponse,
    responses={**errors.EVENT_STREAM, **errors.responses(400, 404, 409, 502), **send.STILL_RUNNING},
)
def send_conversation_message(
    conversation_id: str, body: ConversationSend, org: Org, db: Db, engine: AgentEngine, if_busy: send.IfBusy = "queue"
) -> Any:
    """Send to the conversation: an SSE stream by default (``streaming: false``: one LettaResponse). Runs of
    one conversation take turns; other conversations of the agent run meanwhile."""
    started = _begin(db, org, conversation_id, body, engine, if_busy)
    if body.streaming:
        return send.stream_of(db, engine, started, body)
    return send.answer(db, engine, started)


@router.post("/{conversation_id}/stream", responses={**errors.EVENT_STREAM, **errors.responses(400, 404)})
def resume_conversation_stream(
    conversation_id: str, org: Org, db: Db, body: ConversationStream | None = None
) -> StreamingResponse:
    """Follow the conversation's newest active run (else its newest run; or ``run_id`` / the run of
    ``otid``) from ``starting_after`` (a ``seq_id`` of the stream)."""
    body = body or ConversationStream()
    with db.transaction() as conn:
        target = conversations.resolve(conn, org, conversation_id, body.agent_id)
        run_id = body.run_id
        if run_id is not None:
            run = run_api.require(conn, org, run_id)
            if run.agent_id != target.agent_id or run.conversation_id != target.conversation_id:
                raise NotFound(f"run {run_id} not found in conversation {conversation_id}")
        else:
            run_id = conversation_store.latest_run(conn, target.agent_id, target.conversation_id, otid=body.otid)
        if run_id is None:
            raise NotFound(f"conversation {conversation_id} has no run to stream")
    events = send.follow_run(db, run_id, body.starting_after)
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Run-Id": run_id}
    )
