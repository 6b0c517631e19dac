"""Letta V1 agent routes: /v1/agents/..."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from starlette.responses import Response

from o.agent import identities, lifecycle
from o.agent.tools import offered_builtins
from o.api import errors
from o.api.agent_states import agents_json
from o.api.deps import AgentEngine, AppServices, Db, DbOrg, Org, Secrets
from o.api.paging import paging
from o.api.responses import JSONBytes, model_json
from o.api.schemas.agents import AgentState, CreateAgent, UpdateAgent, with_listed_embedding
from o.store.pages import Page
from o.tools import base as base_tools

router = APIRouter(prefix="/v1/agents", tags=["agents"], responses=errors.responses(401))


# 404: a block_ids, tool_ids or tools entry that does not exist; 422: a field O cannot honour, an unknown
# model or embedding handle, a chosen model whose provider is not configured or does not list it, an endpoint
# the operator does not allow
@router.post("/", response_model=AgentState, status_code=status.HTTP_200_OK, responses=errors.responses(400, 404, 409))
def create_agent(
    body: CreateAgent, org: Org, db: Db, secrets: Secrets, engine: AgentEngine, services: AppServices
) -> AgentState:
    body = with_listed_embedding(body, services.models.embedding_config)
    for named in body.named_models():  # asked before the transaction: a provider's answer may take seconds
        services.models.check_listed(named)
    spec = body.to_spec()
    # O's default model is not refused for a missing key here: the first send says what to configure
    chosen = body.model is not None or body.llm_config is not None
    check = engine.check_configs if chosen else partial(engine.check_configs, chosen=False)
    with db.transaction() as conn:
        # the outside-world built-ins this process runs can be named in ``tools``
        base_tools.ensure(conn, org, offered_builtins(engine.tools))
        view = lifecycle.create(conn, org, spec, secrets=secrets, check=check)
        if body.identity_ids:
            identities.set_for_agent(conn, org, view.agent["id"], body.identity_ids)
            view = lifecycle.get(conn, org, view.agent["id"])
    return AgentState.from_view(view)


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
        versions = lifecycle.listed_versions(
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
        written = agents_json(conn, org, list(lifecycle.versions(conn, org, [agent_id]).items()))
        if not written:  # NotFound (unless the agent was made in between)
            return model_json(AgentState.from_view(lifecycle.get(conn, org, agent_id)))
    return JSONBytes(written[0])


@router.patch("/{agent_id}", response_model=AgentState, responses=errors.responses(400, 404, 409))
def update_agent(
    agent_id: str, body: UpdateAgent, org: Org, db: Db, secrets: Secrets, engine: AgentEngine, services: AppServices
) -> AgentState:
    body = with_listed_embedding(body, services.models.embedding_config)
    for named in body.named_models():
        services.models.check_listed(named)
    with db.transaction() as conn:
        # locked: the changes are made to the agent's settings as they are now
        agent = lifecycle.require(conn, org, agent_id, for_update=True)
        changes = body.to_changes(agent)
        view = lifecycle.update(conn, org, agent_id, changes, secrets=secrets, check=engine.check_configs)
        if body.identity_ids is not None:
            identities.set_for_agent(conn, org, agent_id, body.identity_ids)
            view = lifecycle.get(conn, org, agent_id)
    return AgentState.from_view(view)


@router.delete("/{agent_id}", status_code=status.HTTP_200_OK, responses=errors.responses(404))
def delete_agent(agent_id: str, org: Org, db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        lifecycle.delete(conn, org, agent_id)
    return {"message": f"agent {agent_id} deleted"}
