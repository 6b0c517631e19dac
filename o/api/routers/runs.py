"""Runs: GET /v1/runs/, /v1/runs/{run_id}, its messages, usage and steps, and cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from o.agent import runner
from o.agent import runs as run_api
from o.api import errors
from o.api.deps import AgentEngine, Db, Org
from o.api.paging import paging
from o.api.routers.send import follow_run
from o.api.schemas.common import INT64_MAX
from o.api.schemas.messages import LettaMessage, to_letta_list
from o.api.schemas.runs import run_object, step_object, usage_of
from o.store import messages as message_store
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.pages import Page

router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)

ACTIVE = ["created", "running"]


@router.get("/")
def list_runs(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100, default_order="desc", sorting="order_or_ascending"))],
    agent_id: str | None = None,
    agent_ids: list[str] | None = Query(default=None),
    statuses: list[str] | None = Query(default=None),
    stop_reason: str | None = None,
    active: bool = False,
) -> Any:
    ids = list(agent_ids or []) + ([agent_id] if agent_id else [])
    with db.transaction() as conn:
        rows = run_store.list_page(
            conn, org, page, agent_ids=ids or None, statuses=ACTIVE if active else statuses, stop_reason=stop_reason
        )
    return jsonable_encoder([run_object(r) for r in rows])


@router.get("/{run_id}", responses=NOT_FOUND)
def get_run(run_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        run = run_api.require(conn, org, run_id)
    return jsonable_encoder(run_object(run))


@router.get("/{run_id}/messages", response_model=list[LettaMessage], responses=NOT_FOUND)
def run_messages(
    run_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
) -> Any:
    with db.transaction() as conn:
        run = run_api.require(conn, org, run_id)
        rows = message_store.list_page(conn, org, run.agent_id, page, run_id=run_id)
    return jsonable_encoder(to_letta_list(rows, use_assistant_message=run.request.get("use_assistant_message", True)))


@router.get("/{run_id}/usage", responses=NOT_FOUND)
def run_usage(run_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        run = run_api.require(conn, org, run_id)
    usage = usage_of(run)
    usage.pop("message_type")
    return usage


@router.get("/{run_id}/steps", responses=NOT_FOUND)
def run_steps(
    run_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
) -> Any:
    with db.transaction() as conn:
        run_api.require(conn, org, run_id)
        steps = step_store.page_for_run(conn, org, run_id, page)
    return jsonable_encoder([step_object(s) for s in steps])


class StreamRun(BaseModel):
    model_config = ConfigDict(extra="ignore")

    starting_after: int = Field(
        default=0, ge=0, le=INT64_MAX, description="a seq_id already seen; stream what came after"
    )
    poll_interval: float | None = Field(default=None, gt=0, le=5)


@router.post("/{run_id}/stream", responses={**errors.EVENT_STREAM, **errors.responses(400, 404)})
def stream_run(run_id: str, org: Org, db: Db, body: StreamRun | None = None) -> StreamingResponse:
    """Follow a run (e.g. one started with /messages/async) as Server-Sent Events, from Postgres."""
    body = body or StreamRun()
    with db.transaction() as conn:
        run_api.require(conn, org, run_id)
    events = follow_run(db, run_id, body.starting_after, poll_s=body.poll_interval or 0.1)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.post("/{run_id}/cancel", responses=NOT_FOUND)
def cancel_run(run_id: str, org: Org, db: Db, engine: AgentEngine) -> Any:
    runner.cancel(engine.launcher, db, org, None, [run_id])
    with db.transaction() as conn:
        run = run_api.require(conn, org, run_id)
    return jsonable_encoder(run_object(run))
