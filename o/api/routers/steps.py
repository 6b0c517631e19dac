"""Steps: GET /v1/steps/, /v1/steps/{step_id}, its messages, metrics and provider trace, PATCH its
feedback; and a run's trace, GET /v1/runs/{run_id}/trace.

A step is one model call and the tools it asked for. Feedback on a step is stored on it and, through
:func:`o.evolution.feedback.rate_step`, becomes a score credited to the revision that served the step's
run: the canary gate reads it as evidence (a canary collecting negative feedback is rolled back).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, ConfigDict, Field

from o.agent import runs as run_api
from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging
from o.api.schemas.messages import LettaMessage, to_letta_list
from o.api.schemas.steps import metrics_object, provider_trace, run_spans, step_object
from o.errors import NotFound
from o.evolution import feedback as feedback_api
from o.memory.archival import time_range
from o.store import runs as run_store
from o.store import steps as step_store
from o.store.db import Conn
from o.store.pages import Page

router = APIRouter(prefix="/v1/steps", tags=["steps"], responses=errors.responses(401))
runs_router = APIRouter(prefix="/v1/runs", tags=["runs"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
MAX_SPANS = 5000
TAG_LENGTH = 200


def _require(conn: Conn, org: str, step_id: str) -> dict[str, Any]:
    row = step_store.shown(conn, org, step_id)
    if row is None:
        raise NotFound(f"step {step_id} not found")
    return row


@router.get("/", responses=errors.responses(400))
def list_steps(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=50, default_order="desc"))],
    order_by: Literal["created_at"] = "created_at",
    agent_id: str | None = None,
    model: str | None = None,
    feedback: Literal["positive", "negative"] | None = None,
    has_feedback: bool | None = None,
    tags: list[str] | None = Query(default=None),
    trace_ids: list[str] | None = Query(default=None),
    project_id: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
) -> Any:
    """The organization's steps, newest first by default; ``trace_ids`` are run ids (a step's trace is its run)."""
    del order_by  # the one order Letta offers
    created_from, created_to = time_range(start_date, end_date)
    if project_id:
        return []  # O has no projects: no step belongs to one
    filters = step_store.StepFilters(
        agent_id=agent_id,
        run_ids=tuple(trace_ids or ()),
        model=model,
        feedback=feedback,
        has_feedback=has_feedback,
        tags=tuple(tags or ()),
        created_from=created_from,
        created_to=created_to,
    )
    with db.transaction() as conn:
        rows = step_store.list_shown(conn, org, page, filters)
    return jsonable_encoder([step_object(r) for r in rows])


@router.get("/{step_id}", responses=NOT_FOUND)
def get_step(step_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        row = _require(conn, org, step_id)
    return jsonable_encoder(step_object(row))


@router.get("/{step_id}/messages", response_model=list[LettaMessage], responses=errors.responses(400, 404))
def step_messages(
    step_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
    order_by: Literal["created_at"] = "created_at",
) -> Any:
    """The messages the step produced: its reply (reasoning, tool calls, assistant text), then its tool results."""
    del order_by
    with db.transaction() as conn:
        step = _require(conn, org, step_id)
        run = run_store.get(conn, step["run_id"]) if step["run_id"] else None
        rows = step_store.messages_page(conn, org, step_id, page)
    use_assistant = run.request.get("use_assistant_message", True) if run is not None else True
    return jsonable_encoder(to_letta_list(rows, use_assistant_message=use_assistant))


@router.get("/{step_id}/metrics", responses=NOT_FOUND)
def step_metrics(step_id: str, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        row = _require(conn, org, step_id)
    return metrics_object(row)


@router.get("/{step_id}/trace", responses=NOT_FOUND)
def step_trace(step_id: str, org: Org, db: Db) -> Any:
    """The step's provider trace; null for a step recorded before O kept traces."""
    with db.transaction() as conn:
        row = _require(conn, org, step_id)
    return jsonable_encoder(provider_trace(row))


class StepFeedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feedback: Literal["positive", "negative"] | None = Field(
        default=None, description="the verdict; null clears it (and withdraws it from the evolution gate)"
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=TAG_LENGTH)]] | None = Field(default=None, max_length=50)
    # O's own: why (the console's comment box); kept with the verdict's score for the evolution's reflection
    comment: str | None = Field(default=None, max_length=4000)


@router.patch("/{step_id}/feedback", responses=errors.responses(400, 404))
def step_feedback(step_id: str, body: StepFeedback, org: Org, db: Db) -> Any:
    with db.transaction() as conn:
        row = feedback_api.rate_step(conn, org, step_id, body.feedback, body.tags, body.comment)
    return jsonable_encoder(step_object(row))


@runs_router.get("/{run_id}/trace", responses=NOT_FOUND)
def run_trace(run_id: str, org: Org, db: Db, limit: Annotated[int, Query(ge=1, le=MAX_SPANS)] = 1000) -> Any:
    """The run's trace as spans (run, agent steps, LLM requests, tool executions), from what O recorded."""
    with db.transaction() as conn:
        run = run_api.require(conn, org, run_id)
        steps = step_store.shown_for_run(conn, run_id, MAX_SPANS)
    record = {"id": run.id, "agent_id": run.agent_id, "created_at": run.created_at, "completed_at": run.completed_at}
    return jsonable_encoder(run_spans(record, steps, limit))
