"""Letta V1 tool routes: /v1/tools/... (the organization's tools, its base tools among them, tool
search) and running source once (an agent's tools: o/api/routers/agent_tools.py).

Tool code never runs in this process: ``POST /v1/tools/run`` goes through the sandbox
the composition root chose (a local process jail, or the sandbox Lambda in AWS).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from o.agent.tools import offered_builtins
from o.api import errors
from o.api.deps import AgentEngine, Db, Embeddings, Org, ToolSandbox
from o.api.paging import paging
from o.api.schemas.tools import (
    Tool,
    ToolCreate,
    ToolRunFromSource,
    ToolRunReturn,
    ToolSearchRequest,
    ToolSearchResult,
    ToolUpdate,
    ToolVersion,
)
from o.errors import InvalidInput
from o.ids import new_id
from o.store.pages import Page
from o.store.tools import count, list_page
from o.tools import base, catalog
from o.tools import search as tool_search
from o.tools.sandbox.base import ToolInvocation, ToolResult
from o.tools.schema import find_function, parse_source

router = APIRouter(tags=["tools"], responses=errors.responses(401))
NOT_FOUND = errors.responses(404)
# 409: another tool of the organization has that name
WRITE = errors.responses(400, 409)


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
    engine: AgentEngine,
    page: Annotated[Page, Depends(paging(default_order="desc"))],
    name: str | None = None,
    names: list[str] | None = Query(default=None),
    tool_types: list[str] | None = Query(default=None),
    search: str | None = None,
    tool_ids: list[str] | None = Query(default=None),
    exclude_tool_types: list[str] | None = Query(default=None),
    return_only_letta_tools: bool = False,
) -> list[Tool]:
    with db.transaction() as conn:
        base.ensure(conn, org, offered_builtins(engine.tools))
        rows = list_page(
            conn,
            org,
            page,
            name=name,
            names=_listed(names),
            tool_types=_listed(tool_types),
            search=search,
            tool_ids=_listed(tool_ids),
            exclude_tool_types=_listed(exclude_tool_types),
            only_letta=return_only_letta_tools,
        )
    return [Tool.from_row(r) for r in rows]


def _listed(values: list[str] | None) -> list[str] | None:
    """Repeated query parameters or comma-separated values, as Letta accepts both."""
    if values is None:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@router.get("/v1/tools/count", response_model=int)
def count_tools(org: Org, db: Db, engine: AgentEngine) -> int:
    with db.transaction() as conn:
        base.ensure(conn, org, offered_builtins(engine.tools))
        return count(conn, org)


@router.post("/v1/tools/search", response_model=list[ToolSearchResult], responses=errors.responses(400))
def search_tools(
    body: ToolSearchRequest, org: Org, db: Db, embedders: Embeddings, engine: AgentEngine
) -> list[ToolSearchResult]:
    with db.transaction() as conn:
        base.ensure(conn, org, offered_builtins(engine.tools))
        hits = tool_search.search(
            conn,
            org,
            body.query,
            mode=body.search_mode,
            tool_types=body.tool_types,
            tags=body.tags,
            limit=body.limit,
            embedders=embedders,
        )
    return [
        ToolSearchResult(
            tool=Tool.from_row({k: v for k, v in hit.tool.items() if k != "fts_score"}),
            combined_score=hit.combined_score,
            embedded_text=hit.embedded_text,
            fts_rank=hit.fts_rank,
            vector_rank=hit.vector_rank,
        )
        for hit in hits
    ]


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


@router.delete("/v1/tools/{tool_id}", responses={**NOT_FOUND, **errors.responses(400)})
def delete_tool(tool_id: str, org: Org, db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        catalog.delete(conn, org, tool_id)
    return {"message": f"tool {tool_id} deleted"}


@router.get("/v1/tools/{tool_id}/versions", response_model=list[ToolVersion], responses=NOT_FOUND)
def list_tool_versions(
    tool_id: str,
    org: Org,
    db: Db,
    limit: int = Query(default=50, ge=1, le=1000),
    after: int | None = Query(default=None, ge=0, description="a version number: the versions after it, in order"),
    before: int | None = Query(default=None, ge=0, description="a version number: the versions before it, in order"),
    order: Literal["asc", "desc"] = "asc",
) -> list[ToolVersion]:
    """The tool's versions, oldest first unless ``order=desc``; cursors are version numbers."""
    with db.transaction() as conn:
        rows = catalog.versions(conn, org, tool_id, limit=limit, after=after, before=before, descending=order == "desc")
    return [ToolVersion(**r) for r in rows]
