"""Letta V1 agent routes that read agents: GET /v1/agents/ and /v1/agents/{agent_id}.

The routes that change agents are :mod:`o.api.routers.agent_changes`: a GET of an agent, the request an
API Lambda's cold start serves most, does not build their request models and routes nor import what
creating an agent needs (the base tools, the tools' catalog)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic_core import to_json
from starlette.responses import Response

from o.agent import views as agent_views
from o.api import errors
from o.api.deps import Db, DbOrg
from o.api.paging import paging
from o.api.responses import SHARED_PLACEHOLDER, JSONBytes, model_json, spliced_json
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
        views = agent_views.list_agents(
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
    # each distinct tool serialized once for the whole list: the agents share a few, schemas and all
    tool_json: dict[str, bytes] = {}
    agents = []
    for view in views:
        tools = [tool_json.get(t["id"]) or tool_json.setdefault(t["id"], to_json(t)) for t in view.tools]
        state = AgentState.from_view(view)
        state.tools = [SHARED_PLACEHOLDER]
        agents.append(spliced_json(state, tools))
    return JSONBytes(b"[" + b",".join(agents) + b"]")


@router.get("/{agent_id}", response_model=AgentState, responses=errors.responses(404))
def get_agent(agent_id: str, org: DbOrg, db: Db) -> Response:
    with db.read() as conn:
        view = agent_views.get(conn, org, agent_id)
    return model_json(AgentState.from_view(view))
