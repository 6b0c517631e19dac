"""Agent revisions: list, read, roll back (/v1/agents/{agent_id}/revisions/...)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from o.agent import revisions
from o.api import errors
from o.api.deps import Db, Evolution, Org
from o.api.schemas.common import INT32_MAX
from o.evolution import loop

router = APIRouter(prefix="/v1/agents", tags=["revisions"], responses=errors.responses(401, 404))
# a revision's number, as the database keeps it
Number = Annotated[int, Path(ge=1, le=INT32_MAX)]


class Revision(BaseModel):
    id: str
    agent_id: str
    number: int
    parent: int | None
    config: dict[str, Any]
    config_hash: str
    diff: dict[str, Any]
    author: Literal["user", "agent"]
    rationale: str
    evolution_id: str | None
    created_at: datetime
    # true for the revision the agent runs now
    current: bool = False

    @classmethod
    def from_row(cls, row: dict[str, Any], current: int | None = None) -> Revision:
        return cls(**{k: row[k] for k in cls.model_fields if k in row}, current=row["number"] == current)


class RollbackRequest(BaseModel):
    model_config = {"extra": "forbid"}
    rationale: str | None = Field(default=None, max_length=2000)


@router.get("/{agent_id}/revisions", response_model=list[Revision])
def list_revisions(
    agent_id: str,
    org: Org,
    db: Db,
    limit: int = Query(default=50, ge=1, le=1000),
    before: int | None = Query(
        default=None, ge=1, le=INT32_MAX, description="revisions that come before this number in the requested order"
    ),
    after: int | None = Query(
        default=None, ge=0, le=INT32_MAX, description="revisions that come after this number in the requested order"
    ),
    order: Literal["asc", "desc"] = "desc",
) -> list[Revision]:
    with db.transaction() as conn:
        running = revisions.current(conn, org, agent_id)["number"]
        rows = revisions.list_revisions(conn, org, agent_id, limit=limit, before=before, after=after, order=order)
    return [Revision.from_row(r, running) for r in rows]


@router.get("/{agent_id}/revisions/current", response_model=Revision)
def current_revision(agent_id: str, org: Org, db: Db) -> Revision:
    with db.transaction() as conn:
        row = revisions.current(conn, org, agent_id)
    return Revision.from_row(row, row["number"])


@router.get("/{agent_id}/revisions/{number}", response_model=Revision)
def get_revision(agent_id: str, number: Number, org: Org, db: Db) -> Revision:
    with db.transaction() as conn:
        running = revisions.current(conn, org, agent_id)["number"]
        row = revisions.get(conn, org, agent_id, number)
    return Revision.from_row(row, running)


@router.post("/{agent_id}/revisions/{number}/rollback", response_model=Revision, responses=errors.responses(400, 409))
def rollback(
    agent_id: str, number: Number, org: Org, db: Db, deps: Evolution, body: RollbackRequest | None = None
) -> Revision:
    """Create a new user revision equal to revision ``number`` and run it from now on.

    An evolution in flight for this agent is stopped first (its canary withdrawn).
    """
    loop.stop_active(deps, org, agent_id, reason=f"user rolled back to revision {number}")
    with db.transaction() as conn:
        row = revisions.rollback(conn, org, agent_id, number, rationale=body.rationale if body else None)
    return Revision.from_row(row, row["number"])
