"""Letta V1 MCP server routes: /v1/mcp-servers/... (register, list, update, delete, refresh a server;
list, read and run its tools). The work is the domain's (:mod:`o.tools.mcp.servers`); a server that
cannot be reached answers 502 with the reason and is kept, unhealthy, without tools."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from o.api import errors
from o.api.deps import Org
from o.api.schemas.mcp_servers import McpServer, McpServerCreate, McpServerUpdate, McpToolRun
from o.api.schemas.tools import Tool, ToolExecutionResult
from o.errors import NotFound
from o.tools.mcp.servers import McpServers

router = APIRouter(tags=["mcp-servers"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
# 400: a body that is not UTF-8; 409: a server of that name exists; 422: a bad config (stdio not
# enabled, a URL the policy refuses); 502: the server could not be reached (it is stored unhealthy)
CONNECT = errors.responses(400, 404, 409, 422, 502)


async def get_mcp(request: Request) -> McpServers:
    mcp: McpServers | None = request.app.state.services.mcp_servers
    if mcp is None:
        raise NotFound("MCP servers are not configured on this server")
    return mcp


Mcp = Annotated[McpServers, Depends(get_mcp)]


@router.post("/v1/mcp-servers/", response_model=McpServer, responses=CONNECT)
def create_mcp_server(body: McpServerCreate, org: Org, mcp: Mcp) -> McpServer:
    return McpServer.from_row(mcp.create(org, body.server_name, body.config.config()))


@router.get("/v1/mcp-servers/", response_model=list[McpServer])
def list_mcp_servers(org: Org, mcp: Mcp) -> list[McpServer]:
    return [McpServer.from_row(row) for row in mcp.all(org)]


@router.get("/v1/mcp-servers/{mcp_server_id}", response_model=McpServer, responses=NOT_FOUND)
def retrieve_mcp_server(mcp_server_id: str, org: Org, mcp: Mcp) -> McpServer:
    return McpServer.from_row(mcp.get(org, mcp_server_id))


@router.patch("/v1/mcp-servers/{mcp_server_id}", response_model=McpServer, responses=CONNECT)
def update_mcp_server(mcp_server_id: str, body: McpServerUpdate, org: Org, mcp: Mcp) -> McpServer:
    return McpServer.from_row(mcp.update(org, mcp_server_id, body.server_name, body.config.changes()))


@router.delete("/v1/mcp-servers/{mcp_server_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
def delete_mcp_server(mcp_server_id: str, org: Org, mcp: Mcp) -> Response:
    mcp.delete(org, mcp_server_id)
    return Response(status_code=204)


@router.patch("/v1/mcp-servers/{mcp_server_id}/refresh", response_model=dict[str, Any], responses=CONNECT)
def refresh_mcp_server(mcp_server_id: str, org: Org, mcp: Mcp, agent_id: str | None = None) -> dict[str, Any]:
    """Re-list the server's tools: added, updated, unchanged, removed (attached to no agent), disappeared
    (no longer listed but still attached: kept, with the agents that have them) and skipped (malformed)."""
    return mcp.refresh(org, mcp_server_id, agent_id)


@router.get("/v1/mcp-servers/{mcp_server_id}/tools", response_model=list[Tool], responses=NOT_FOUND)
def list_mcp_tools(mcp_server_id: str, org: Org, mcp: Mcp) -> list[Tool]:
    return [Tool.from_row(row) for row in mcp.tools(org, mcp_server_id)]


@router.get("/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}", response_model=Tool, responses=NOT_FOUND)
def retrieve_mcp_tool(mcp_server_id: str, tool_id: str, org: Org, mcp: Mcp) -> Tool:
    return Tool.from_row(mcp.tool(org, mcp_server_id, tool_id))


@router.post(
    "/v1/mcp-servers/{mcp_server_id}/tools/{tool_id}/run",
    response_model=ToolExecutionResult,
    responses=errors.responses(400, 404, 422),
)
def run_mcp_tool(
    mcp_server_id: str, tool_id: str, org: Org, mcp: Mcp, body: McpToolRun | None = None
) -> ToolExecutionResult:
    result = mcp.run(org, mcp_server_id, tool_id, body.args if body is not None else {})
    return ToolExecutionResult(
        status="success" if result.ok else "error", func_return=result.func_return, stdout=[], stderr=[]
    )
