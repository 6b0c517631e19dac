"""Letta V1 routes for an agent's tools: list, attach and detach (base tools too), run one for the
agent, its approval requirement per tool, and the agent's tool variables.

A custom tool runs in the sandbox the composition root chose, never in this process; a base tool
(Letta's built-ins) runs in-process against the agent's memory, as it does in a conversation.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request

from o.agent import lifecycle
from o.agent.tools import web_tools
from o.api import errors
from o.api.deps import AgentEngine, Db, Embeddings, Org, Secrets, ToolSandbox
from o.api.paging import paging, slice_page
from o.api.schemas.agent_state import AgentState
from o.api.schemas.tools import (
    AgentToolRun,
    SetToolEnvironment,
    Tool,
    ToolApproval,
    ToolEnvironmentVariable,
    ToolExecutionResult,
)
from o.errors import InvalidInput, NotFound
from o.store import tools as tool_store
from o.store.pages import Page
from o.tools import catalog
from o.tools.execute import run_for_agent

router = APIRouter(tags=["tools"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)


@router.get("/v1/agents/{agent_id}/tools", response_model=list[Tool], responses=NOT_FOUND)
def list_agent_tools(
    agent_id: str,
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=100))],
) -> list[Tool]:
    with db.transaction() as conn:
        rows = catalog.agent_tools(conn, org, agent_id)
    return [Tool.from_row(r) for r in slice_page(rows, page)]


@router.patch("/v1/agents/{agent_id}/tools/attach/{tool_id}", response_model=AgentState, responses=NOT_FOUND)
def attach_tool(agent_id: str, tool_id: str, org: Org, db: Db) -> AgentState:
    with db.transaction() as conn:
        catalog.attach(conn, org, agent_id, tool_id)
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


@router.patch("/v1/agents/{agent_id}/tools/detach/{tool_id}", response_model=AgentState, responses=NOT_FOUND)
def detach_tool(agent_id: str, tool_id: str, org: Org, db: Db) -> AgentState:
    with db.transaction() as conn:
        catalog.detach(conn, org, agent_id, tool_id)
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


@router.post(
    "/v1/agents/{agent_id}/tools/{tool_name}/run",
    response_model=ToolExecutionResult,
    responses=errors.responses(400, 404),
)
def run_agent_tool(
    agent_id: str,
    tool_name: str,
    body: AgentToolRun,
    org: Org,
    db: Db,
    sandbox: ToolSandbox,
    secrets: Secrets,
    embedders: Embeddings,
    engine: AgentEngine,
    request: Request,
) -> ToolExecutionResult:
    web = web_tools(engine.tools)
    mcp = request.app.state.services.mcp_servers
    result = run_for_agent(
        db, org, agent_id, tool_name, body.args, sandbox, secrets=secrets, embedders=embedders, web=web, mcp=mcp
    )
    return ToolExecutionResult(
        status="success" if result.ok else "error",
        func_return=result.func_return,
        stdout=[result.stdout] if result.stdout else [],
        stderr=[result.stderr] if result.stderr else [],
    )


@router.patch(
    "/v1/agents/{agent_id}/tools/approval/{tool_name}",
    response_model=AgentState,
    responses=errors.responses(400, 404),
)
def update_tool_approval(
    agent_id: str,
    tool_name: str,
    org: Org,
    db: Db,
    body: Annotated[ToolApproval | None, Body()] = None,
    requires_approval: Annotated[bool | None, Query(description="deprecated: send it in the body")] = None,
) -> AgentState:
    """Whether calls of the agent's tool ``tool_name`` wait for a human's approval (Letta keeps this as
    a ``requires_approval`` tool rule of the agent, which this adds or removes)."""
    required = body.requires_approval if body is not None else requires_approval
    if required is None:
        raise InvalidInput("send requires_approval (true or false)")
    with db.transaction() as conn:
        agent = lifecycle.require(conn, org, agent_id, for_update=True)
        if tool_store.attached_by_name(conn, org, agent_id, tool_name) is None:
            raise NotFound(f"no tool named {tool_name!r} is attached to agent {agent_id}")
        rules = agent["tool_rules"] or []
        if catalog.requires_approval(rules, tool_name) != required:
            lifecycle.update(conn, org, agent_id, {"tool_rules": catalog.with_approval(rules, tool_name, required)})
        return AgentState.from_view(lifecycle.get(conn, org, agent_id))


# O's own route until agent create/update carry Letta's tool_exec_environment_variables
@router.get("/v1/agents/{agent_id}/tool-environment", response_model=list[ToolEnvironmentVariable], responses=NOT_FOUND)
def get_tool_environment(agent_id: str, org: Org, db: Db) -> list[ToolEnvironmentVariable]:
    with db.transaction() as conn:
        return [ToolEnvironmentVariable.masked(r) for r in catalog.agent_env(conn, org, agent_id)]


@router.put(
    "/v1/agents/{agent_id}/tool-environment",
    response_model=list[ToolEnvironmentVariable],
    responses=errors.responses(400, 404),
)
def set_tool_environment(
    agent_id: str, body: SetToolEnvironment, org: Org, db: Db, secrets: Secrets
) -> list[ToolEnvironmentVariable]:
    with db.transaction() as conn:
        rows = catalog.set_agent_env(conn, org, agent_id, body.variables, body.descriptions, secrets=secrets)
    return [ToolEnvironmentVariable.masked(r) for r in rows]
