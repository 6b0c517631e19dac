"""Letta V1 agent routes that read agents: GET /v1/agents/ and /v1/agents/{agent_id}.

The routes that change agents are :mod:`o.api.routers.agent_changes`: a GET of an agent, the request an
API Lambda's cold start serves most, does not build their request models and routes nor import what
creating an agent needs (the base tools, the tools' catalog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from o.agent import views as agent_views
from o.api import errors
from o.api.agent_states import agents_json
from o.api.deps import Db, DbOrg
from o.api.paging import paging
from o.api.responses import JSONBytes, model_json
from o.api.schemas.agent_state import AgentState
from o.store.pages import Page

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=errors.responses(401))


@router.get("/", response_model=list[AgentState])
def list_agents(
    org: DbOrg,
    db: Db,
    page: Annotated[
        Page, Depends(paging(default_order="desc", sorting="order_or_ascending", sortable=("created_at", "updated_at")))
    ],
    name: str | None = None,
    tags: list[str] | None = Query(default=None),
    match_all_tags: bool = False,
    query_text: str | None = None,
    identity_id: str | None = None,
    identifier_keys: list[str] | None = Query(default=None),
) -> Response:
    with db.read() as conn:
        versions = agent_views.listed_versions(
            conn,
            org,
            page,
            name=name,
            tags=tags,
            match_all_tags=match_all_tags,
            query_text=query_text,
            identity_id=identity_id,
            identifier_keys=identifier_keys,
        )
        agents = agents_json(conn, org, versions) if versions else []
    return JSONBytes(b"[" + b",".join(agents) + b"]")


@router.get("/{agent_id}", response_model=AgentState, responses=errors.responses(404))
def get_agent(agent_id: str, org: DbOrg, db: Db) -> Response:
    with db.read() as conn:
        written = agents_json(conn, org, list(agent_views.versions(conn, org, [agent_id]).items()))
        if not written:  # NotFound (unless the agent was made in between)
            return model_json(AgentState.from_view(agent_views.get(conn, org, agent_id)))
    return JSONBytes(written[0])
