"""Letta V1 tool routes: /v1/tools/..., agent attach/detach, and running source once.

Tool code never runs in this process: ``POST /v1/tools/run`` goes through the sandbox
the composition root chose (a local process jail, or the sandbox Lambda in AWS).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from o.agent import lifecycle
from o.api import errors
from o.api.deps import Db, Org, Secrets, ToolSandbox
from o.api.paging import paging, slice_page
from o.api.schemas.agents import AgentState
from o.api.schemas.common import Request as RequestBody
from o.api.schemas.common import Response
from o.errors import InvalidInput
from o.ids import new_id
from o.store.pages import Page
from o.store.tools import count, list_page
from o.tools import catalog
from o.tools.catalog import MAX_RETURN_CHARS, ToolSpec
from o.tools.sandbox.base import ToolInvocation, ToolResult
from o.tools.schema import find_function, parse_source

router = APIRouter(tags=["tools"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
# 409: another tool of the organization has that name
WRITE = errors.responses(400, 409)


class PipRequirement(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    version: str | None = None


class ToolCreate(RequestBody):
    source_code: str = Field(min_length=1, max_length=200_000)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    json_schema: dict[str, Any] | None = None
    args_json_schema: dict[str, Any] | None = None
    source_type: str = "python"
    return_char_limit: int = Field(default=6000, ge=1, le=MAX_RETURN_CHARS)
    pip_requirements: list[PipRequirement] | None = None
    npm_requirements: list[PipRequirement] | None = None
    default_requires_approval: bool | None = None
    enable_parallel_execution: bool | None = None
    metadata_: dict[str, Any] | None = None

    def to_spec(self) -> ToolSpec:
        return ToolSpec(
            source_code=self.source_code,
            description=self.description,
            tags=self.tags,
            json_schema=self.json_schema,
            args_json_schema=self.args_json_schema,
            source_type=self.source_type,
            return_char_limit=self.return_char_limit,
            pip_requirements=[r.model_dump(exclude_none=True) for r in self.pip_requirements or []],
            npm_requirements=[r.model_dump(exclude_none=True) for r in self.npm_requirements or []],
            default_requires_approval=bool(self.default_requires_approval),
            enable_parallel_execution=bool(self.enable_parallel_execution),
            metadata=self.metadata_ or {},
        )


class ToolUpdate(RequestBody):
    description: str | None = None
    tags: list[str] | None = None
    source_code: str | None = Field(default=None, min_length=1, max_length=200_000)
    source_type: str | None = None
    json_schema: dict[str, Any] | None = None
    args_json_schema: dict[str, Any] | None = None
    return_char_limit: int | None = Field(default=None, ge=1, le=MAX_RETURN_CHARS)
    pip_requirements: list[PipRequirement] | None = None
    npm_requirements: list[PipRequirement] | None = None
    default_requires_approval: bool | None = None
    enable_parallel_execution: bool | None = None
    metadata_: dict[str, Any] | None = None

    def to_changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        changes = {k: v for k, v in given.items() if v is not None or k in ("description", "args_json_schema")}
        if "metadata_" in changes:
            changes["metadata"] = changes.pop("metadata_")
        return changes


class Tool(Response):
    id: str
    tool_type: str
    description: str | None
    source_type: str
    name: str
    tags: list[str]
    source_code: str | None
    json_schema: dict[str, Any]
    args_json_schema: dict[str, Any] | None = None
    return_char_limit: int
    pip_requirements: list[dict[str, Any]] | None = None
    npm_requirements: list[dict[str, Any]] | None = None
    default_requires_approval: bool = False
    enable_parallel_execution: bool = False
    created_by_id: str | None = None
    last_updated_by_id: str | None = None
    metadata_: dict[str, Any] = Field(default_factory=dict)
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Tool:
        return cls(
            **{k: v for k, v in row.items() if k not in ("organization_id", "metadata")},
            metadata_=row.get("metadata") or {},
        )


class ToolVersion(Response):
    tool_id: str
    version: int
    name: str
    description: str | None
    source_code: str | None
    json_schema: dict[str, Any]
    return_char_limit: int
    created_at: datetime


class ToolRunFromSource(RequestBody):
    source_code: str = Field(min_length=1, max_length=200_000)
    args: dict[str, Any] = Field(default_factory=dict)
    env_vars: dict[str, str] | None = None
    name: str | None = None
    source_type: str = "python"
    args_json_schema: dict[str, Any] | None = None
    json_schema: dict[str, Any] | None = None
    pip_requirements: list[PipRequirement] | None = None
    npm_requirements: list[PipRequirement] | None = None


class ToolRunReturn(Response):
    """Letta's tool_return_message, plus what the sandbox said about the run. Its own name: the
    OpenAPI document's ``ToolReturnMessage`` is the message of an agent's history."""

    id: str
    date: datetime
    name: str
    message_type: Literal["tool_return_message"] = "tool_return_message"
    tool_return: str
    status: Literal["success", "error"]
    tool_call_id: str
    stdout: list[str] | None = None
    stderr: list[str] | None = None
    sandbox_status: str
    sandbox_message: str
    duration_ms: float
    isolation: list[str]


class ToolEnvironmentVariable(Response):
    key: str
    # always catalog.MASKED: a stored value is never shown (PUT it back to keep it)
    value: str = catalog.MASKED
    description: str | None = None

    @classmethod
    def masked(cls, row: dict[str, Any]) -> ToolEnvironmentVariable:
        return cls(key=row["key"], description=row.get("description"))


class SetToolEnvironment(RequestBody):
    variables: dict[str, str] = Field(default_factory=dict)
    descriptions: dict[str, str] | None = None


@router.post("/v1/tools/", response_model=Tool, responses=WRITE)
def create_tool(body: ToolCreate, org: Org, db: Db) -> Tool:
    with db.transaction() as conn:
        return Tool.from_row(catalog.create(conn, org, body.to_spec()))


@router.put("/v1/tools/", response_model=Tool, responses=WRITE)
def upsert_tool(body: ToolCreate, org: Org, db: Db) -> Tool:
    with db.transaction() as conn:
        return Tool.from_row(catalog.upsert(conn, org, body.to_spec()))


@router.get("/v1/tools/", response_model=list[Tool])
def list_tools(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_order="desc"))],
    name: str | None = None,
    names: list[str] | None = Query(default=None),
    tool_types: list[str] | None = Query(default=None),
    search: str | None = None,
) -> list[Tool]:
    with db.transaction() as conn:
        rows = list_page(conn, org, page, name=name, names=names, tool_types=tool_types, search=search)
    return [Tool.from_row(r) for r in rows]


@router.get("/v1/tools/count", response_model=int)
def count_tools(org: Org, db: Db) -> int:
    with db.transaction() as conn:
        return count(conn, org)


@router.post("/v1/tools/run", response_model=ToolRunReturn, responses=errors.responses(400))
def run_tool_from_source(body: ToolRunFromSource, org: Org, sandbox: ToolSandbox) -> ToolRunReturn:
    if body.source_type != "python":
        raise InvalidInput(f"source_type {body.source_type!r} is not supported; tools are Python functions")
    name = body.name or (body.json_schema or {}).get("name")
    function = find_function(parse_source(body.source_code), name).name
    result = sandbox.run(ToolInvocation(body.source_code, function, body.args, body.env_vars or {}))
    return _tool_return(function, result)


def _tool_return(name: str, result: ToolResult) -> ToolRunReturn:
    return ToolRunReturn(
        id=new_id("message"),
        date=datetime.now().astimezone(),
        name=name,
        tool_return=result.func_return,
        status="success" if result.ok else "error",
        tool_call_id=f"call-{new_id('tool')}",
        stdout=[result.stdout] if result.stdout else [],
        stderr=[result.stderr] if result.stderr else [],
        sandbox_status=result.status,
        sandbox_message=result.message,
        duration_ms=round(result.duration_ms, 3),
        isolation=list(result.isolation),
    )


@router.get("/v1/tools/{tool_id}", response_model=Tool, responses=NOT_FOUND)
def get_tool(tool_id: str, org: Org, db: Db) -> Tool:
    with db.transaction() as conn:
        return Tool.from_row(catalog.get(conn, org, tool_id))


@router.patch("/v1/tools/{tool_id}", response_model=Tool, responses={**NOT_FOUND, **WRITE})
def update_tool(tool_id: str, body: ToolUpdate, org: Org, db: Db) -> Tool:
    changes = body.to_changes()
    for key in ("pip_requirements", "npm_requirements"):
        if key in changes:
            changes[key] = [dict(r) for r in changes[key]]
    with db.transaction() as conn:
        return Tool.from_row(catalog.update(conn, org, tool_id, changes))


@router.delete("/v1/tools/{tool_id}", responses=NOT_FOUND)
def delete_tool(tool_id: str, org: Org, db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        catalog.delete(conn, org, tool_id)
    return {"message": f"tool {tool_id} deleted"}


@router.get("/v1/tools/{tool_id}/versions", response_model=list[ToolVersion], responses=NOT_FOUND)
def list_tool_versions(tool_id: str, org: Org, db: Db) -> list[ToolVersion]:
    with db.transaction() as conn:
        return [ToolVersion(**r) for r in catalog.versions(conn, org, tool_id)]


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
