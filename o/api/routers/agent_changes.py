"""Letta V1 agent routes that change agents: create, update and delete (/v1/agents/...); the reads
are :mod:`o.api.routers.agents`."""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, status

from o.agent import identities, lifecycle
from o.agent.tools import offered_builtins
from o.api import errors
from o.api.deps import AgentEngine, AppServices, Db, Org, Secrets
from o.api.schemas.agent_state import AgentState
from o.api.schemas.agents import CreateAgent, UpdateAgent, with_listed_embedding
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
