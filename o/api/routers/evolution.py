"""Self-evolution over the API: evaluation suite, evolutions (list, start, read, stop), feedback.

Routes under /v1/agents/{agent_id}: ``evaluation`` (GET/PUT), ``evolution-policy`` (GET/PUT, the owner's),
``evolutions`` (GET/POST), ``evolutions/{id}`` (GET), ``evolutions/{id}/stop`` (POST),
``evolutions/{id}/approval`` (POST), ``feedback`` (POST), ``sleeptime`` (POST).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from o.agent import lifecycle
from o.api import errors
from o.api.deps import Db, Evolution, Org
from o.api.paging import paging
from o.api.schemas.common import INT32_MAX
from o.errors import Conflict, NotFound
from o.evolution import approval, evaluator, feedback, loop, owner
from o.store import evolution as store
from o.store.db import Database
from o.store.pages import Page

router = APIRouter(prefix="/v1/agents", tags=["evolution"], responses=errors.responses(401, 404))
# The longest an evolution may take or bake: past it a deadline would leave the calendar.
MAX_SECONDS = 30 * 24 * 3600


class EvolutionOut(BaseModel):
    id: str
    agent_id: str
    status: str
    trigger: str
    base_revision: int
    candidate_revision: int | None
    rationale: str | None
    diff: dict[str, Any] | None
    figures: dict[str, Any]
    budget: dict[str, Any]
    tokens_used: int
    canary: dict[str, Any] | None
    decision: str | None
    reason: str | None
    execution_arn: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    events: list[dict[str, Any]] | None = None

    @classmethod
    def from_record(cls, evo: store.Evolution, events: list[dict[str, Any]] | None = None) -> EvolutionOut:
        row = evo.as_dict()
        data = {k: row[k] for k in cls.model_fields if k in row}
        if events is not None:
            data["events"] = [
                {"phase": e["phase"], "message": e["message"], "data": e["data"], "created_at": e["created_at"]}
                for e in events
            ]
        return cls(**data)


class StartEvolution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_tokens: int | None = Field(default=None, ge=1, le=INT32_MAX)
    max_seconds: float | None = Field(default=None, gt=0, le=MAX_SECONDS)
    canary_weight: float | None = Field(default=None, gt=0, le=1)
    canary_steps: list[float] | None = Field(
        default=None, max_length=10, description="the weights the canary steps up to while live evidence holds"
    )
    bake_seconds: int | None = Field(default=None, ge=0, le=MAX_SECONDS)
    max_bake_rounds: int | None = Field(default=None, ge=1, le=10_000)
    replay_sample: int | None = Field(default=None, ge=0, le=100)
    candidates_per_pass: int | None = Field(default=None, ge=1, le=5)
    # run to the decision before answering (local mode only; AWS always runs a state machine)
    wait: bool = False


class Approval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool = Field(description="true lets the waiting canary or promotion go on; false rolls it back")
    comment: str | None = Field(default=None, max_length=4000)


class Feedback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: float = Field(ge=0, le=1, description="0 = bad, 1 = good")
    run_id: str | None = None
    message_id: str | None = None
    comment: str | None = Field(default=None, max_length=4000)

    @model_validator(mode="after")
    def _target(self) -> Feedback:
        if not self.run_id and not self.message_id:
            raise ValueError("name the response: give run_id or message_id")
        return self


@router.get("/{agent_id}/evaluation", response_model=evaluator.Suite)
def get_evaluation(agent_id: str, org: Org, db: Db) -> evaluator.Suite:
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id)
        return evaluator.load_suite(conn, agent_id)


@router.put("/{agent_id}/evaluation", response_model=evaluator.Suite, responses=errors.responses(400, 409))
def put_evaluation(agent_id: str, body: evaluator.Suite, org: Org, db: Db) -> evaluator.Suite:
    """Set the evaluator. Refused while an evolution runs: it would be judged by rules it did not start with."""
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id, for_update=True)
        active = store.active_for_agent(conn, agent_id)
        if active is None:
            evaluator.save_suite(conn, org, agent_id, body)
            return body
    raise _refused(db, org, agent_id, "change the evaluator", active.id)


def _refused(db: Database, org: str, agent_id: str, what: str, evolution_id: str) -> Conflict:
    """An evaluator change while an evolution runs would judge it by rules it did not start with: refused, and
    recorded as a tamper attempt (the caller may be the agent itself, through a tool holding a key)."""
    with db.transaction() as conn:
        store.record_tampering(conn, org, agent_id, "api", f"{what} while evolution {evolution_id} runs")
    return Conflict(f"evolution {evolution_id} is in progress; stop it before you {what}")


class CaseFromRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(description="a run of this agent: its first user message becomes the case's input")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    checks: evaluator.Checks = Field(default_factory=evaluator.Checks)
    held_out: bool | None = Field(
        default=None, description="unset: the case is held out with the suite's share, by a stable hash of its input"
    )


@router.post(
    "/{agent_id}/evaluation/cases",
    response_model=evaluator.Suite,
    status_code=status.HTTP_201_CREATED,
    responses=errors.responses(400, 409),
)
def add_case(agent_id: str, body: CaseFromRun, org: Org, db: Db) -> evaluator.Suite:
    """Grow the suite from a real conversation (a run, e.g. one a user rated badly)."""
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id, for_update=True)
        active = store.active_for_agent(conn, agent_id)
        if active is None:
            return evaluator.add_case_from_run(conn, org, agent_id, body.run_id, body.name, body.checks, body.held_out)
    raise _refused(db, org, agent_id, "add evaluation cases", active.id)


class Tampering(BaseModel):
    id: int
    evolution_id: str | None
    source: str
    detail: str
    created_at: datetime


@router.get("/{agent_id}/evaluation/tampering", response_model=list[Tampering])
def list_tampering(agent_id: str, org: Org, db: Db) -> list[Tampering]:
    """Refused attempts to change the evaluator (the agent's tools and proposals, API calls mid-evolution)."""
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id)
        return [Tampering(**row) for row in store.tampering(conn, agent_id)]


@router.get("/{agent_id}/evolutions", response_model=list[EvolutionOut])
def list_evolutions(
    agent_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_order="desc"))],
    status_filter: str | None = Query(default=None, alias="status"),
) -> list[EvolutionOut]:
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id)
        found = store.list_for_agent(conn, agent_id, page, status=status_filter)
    return [EvolutionOut.from_record(evo) for evo in found]


# 409: the agent already has an evolution in progress; 502: (waiting) the model failed
@router.post(
    "/{agent_id}/evolutions",
    response_model=EvolutionOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=errors.responses(400, 409, 502),
)
def start_evolution(agent_id: str, org: Org, deps: Evolution, body: StartEvolution | None = None) -> EvolutionOut:
    body = body or StartEvolution()
    budget = body.model_dump(exclude={"wait"}, exclude_none=True)
    started = loop.start(deps, org, agent_id, trigger="api", budget=budget)
    loop.launch(deps, started.id, wait=body.wait)
    with deps.db.transaction() as conn:
        final = store.get(conn, started.id)
        events = store.events(conn, started.id)
    assert final is not None
    return EvolutionOut.from_record(final, events)


@router.get("/{agent_id}/evolutions/{evolution_id}", response_model=EvolutionOut)
def get_evolution(agent_id: str, evolution_id: str, org: Org, db: Db) -> EvolutionOut:
    with db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=org)
        if evo is None or evo.agent_id != agent_id:
            raise NotFound(f"evolution {evolution_id} not found")
        events = store.events(conn, evolution_id)
    return EvolutionOut.from_record(evo, events)


@router.post("/{agent_id}/evolutions/{evolution_id}/stop", response_model=EvolutionOut)
def stop_evolution(agent_id: str, evolution_id: str, org: Org, deps: Evolution) -> EvolutionOut:
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=org)
    if evo is None or evo.agent_id != agent_id:
        raise NotFound(f"evolution {evolution_id} not found")
    final = loop.stop(deps, org, evolution_id)
    with deps.db.transaction() as conn:
        events = store.events(conn, evolution_id)
    return EvolutionOut.from_record(final, events)


@router.post(
    "/{agent_id}/evolutions/{evolution_id}/approval", response_model=EvolutionOut, responses=errors.responses(400, 409)
)
def approve_evolution(agent_id: str, evolution_id: str, body: Approval, org: Org, deps: Evolution) -> EvolutionOut:
    """The owner's decision on the canary or promotion the evolution waits at (409 when it waits at none)."""
    with deps.db.transaction() as conn:
        evo = store.get(conn, evolution_id, organization_id=org)
    if evo is None or evo.agent_id != agent_id:
        raise NotFound(f"evolution {evolution_id} not found")
    decided = approval.decide(deps, org, evolution_id, body.approve, body.comment)
    if not body.approve:
        # a rejection ends the evolution now, not at the driver's next look
        decided = loop.stop(
            deps, org, evolution_id, "the owner rejected it" + (f": {body.comment}" if body.comment else "")
        )
    with deps.db.transaction() as conn:
        events = store.events(conn, evolution_id)
    return EvolutionOut.from_record(decided, events)


@router.get("/{agent_id}/evolution-policy", response_model=owner.OwnerPolicy)
def get_evolution_policy(agent_id: str, org: Org, db: Db) -> owner.OwnerPolicy:
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id)
        return owner.load(conn, agent_id)


@router.put("/{agent_id}/evolution-policy", response_model=owner.OwnerPolicy, responses=errors.responses(400))
def put_evolution_policy(agent_id: str, body: owner.OwnerPolicy, org: Org, db: Db) -> owner.OwnerPolicy:
    """Set the owner's policy; it applies from the next gate of a running evolution on."""
    with db.transaction() as conn:
        lifecycle.require(conn, org, agent_id, for_update=True)
        return owner.save(conn, org, agent_id, body)


@router.post("/{agent_id}/feedback", status_code=status.HTTP_201_CREATED, responses=errors.responses(400))
def give_feedback(agent_id: str, body: Feedback, org: Org, db: Db) -> dict[str, Any]:
    """Score a response. The score is attributed to the revision that produced it."""
    with db.transaction() as conn:
        row = feedback.give(
            conn,
            org,
            agent_id,
            score=body.score,
            comment=body.comment,
            run_id=body.run_id,
            message_id=body.message_id,
        )
    return {k: row[k] for k in ("id", "agent_id", "run_id", "message_id", "score", "comment", "revision", "created_at")}


@router.post("/{agent_id}/sleeptime", responses=errors.responses(409, 502))
def run_sleeptime(agent_id: str, org: Org, deps: Evolution) -> dict[str, Any]:
    """Run a sleep-time pass now (memory reorganization; it may start an evolution)."""
    from o.evolution import sleeptime

    return sleeptime.run_pass(deps, org, agent_id, trigger="api").as_dict()
