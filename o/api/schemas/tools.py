"""Letta's tool shapes: tools, their versions, runs of a tool, tool search, approval settings and
the agents' tool variables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from o.api.schemas.agent_state import AgentState
from o.api.schemas.common import Request as RequestBody
from o.api.schemas.common import Response
from o.tools import catalog
from o.tools.catalog import MAX_RETURN_CHARS, ToolSpec


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


class ToolSearchRequest(RequestBody):
    """Letta's tool search: text matched against the tools' names, descriptions, tags and source."""

    query: str | None = Field(default=None, max_length=2000)
    search_mode: Literal["vector", "fts", "hybrid"] = "hybrid"
    tool_types: list[str] | None = None
    tags: list[str] | None = None
    limit: int = Field(default=50, ge=1, le=1000)


class ToolSearchResult(Response):
    tool: Tool
    combined_score: float
    embedded_text: str | None = None
    fts_rank: int | None = None
    vector_rank: int | None = None


class AgentToolRun(RequestBody):
    args: dict[str, Any] = Field(default_factory=dict)


class ToolExecutionResult(Response):
    """What running one of an agent's tools returned (Letta's ToolExecutionResult)."""

    status: Literal["success", "error"]
    func_return: Any = None
    agent_state: AgentState | None = None
    stdout: list[str] | None = None
    stderr: list[str] | None = None
    sandbox_config_fingerprint: str | None = None


class ToolApproval(RequestBody):
    requires_approval: bool
