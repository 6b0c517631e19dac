"""Letta's agent shapes: CreateAgentRequest, UpdateAgent and AgentState."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from o.agent.lifecycle import AgentSpec, AgentView
from o.api.schemas.blocks import Block, CreateBlock
from o.api.schemas.common import Request, Response
from o.llm.config import EndpointType, LLMConfig, parse_handle
from o.memory.embeddings import LETTA_LOCAL_KIND, LOCAL_KINDS
from o.tools import catalog

# The largest context window O accepts; today's largest models have about two million tokens.
MAX_CONTEXT_WINDOW = 10_000_000


def _known_handle(handle: str) -> str:
    parse_handle(handle)  # ValueError names what is wrong: the form, or a provider O cannot call
    return handle


# A model handle such as "openai/gpt-4o-mini": refused at the request, not at the agent's first send.
Handle = Annotated[str, AfterValidator(_known_handle)]


class LLMConfigIn(BaseModel):
    """Letta's llm_config. Letta clients send many provider-specific fields; keep them all, but
    only a config the agent loop can call with (an endpoint type O has a client for, a handle of a
    known provider, values each field takes)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    model: str = Field(min_length=1)
    model_endpoint_type: EndpointType = "openai"
    model_endpoint: str | None = None
    context_window: int = Field(default=128_000, ge=256, le=MAX_CONTEXT_WINDOW)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_CONTEXT_WINDOW)
    handle: Handle | None = None

    @field_validator("model_endpoint_type", mode="before")
    @classmethod
    def _lower_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _callable(self) -> LLMConfigIn:
        """The extra fields the loop reads (``reasoning_effort``, ...) must hold values it takes."""
        try:
            LLMConfig.model_validate(self.model_dump(exclude_none=True))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise PydanticCustomError(
                "llm_config", "not a usable llm_config: {problems}", {"problems": problems}
            ) from None
        return self


class EmbeddingConfigIn(BaseModel):
    model_config = ConfigDict(extra="allow")

    embedding_endpoint_type: str
    embedding_model: str
    # pgvector's limit for a vector column
    embedding_dim: int = Field(ge=1, le=16_000)
    embedding_endpoint: str | None = None
    embedding_chunk_size: int | None = Field(default=300, ge=1, le=100_000)
    batch_size: int | None = Field(default=None, ge=1, le=10_000)
    handle: str | None = None


def llm_config_from_handle(handle: str, context_window: int | None = None) -> dict[str, Any]:
    provider, model = parse_handle(handle)
    config = LLMConfigIn.model_validate(
        {"model": model, "model_endpoint_type": provider, "handle": handle, "context_window": context_window or 128_000}
    )
    return config.model_dump(exclude_none=True)


class CreateAgent(Request):
    name: str = Field(default="agent", min_length=1, max_length=200)
    system: str | None = None
    description: str | None = None
    agent_type: str = "memgpt_v2_agent"
    llm_config: LLMConfigIn | None = None
    model: Handle | None = Field(default=None, description="a handle such as 'openai/gpt-4o-mini'")
    embedding_config: EmbeddingConfigIn | None = None
    context_window_limit: int | None = Field(default=None, ge=256, le=MAX_CONTEXT_WINDOW)
    memory_blocks: list[CreateBlock] = Field(default_factory=list)
    block_ids: list[str] = Field(default_factory=list)
    tool_rules: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    tool_ids: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="tool names to attach")
    tool_exec_environment_variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="Letta's newer name for the tool variables")
    # Accepted for compatibility with Letta clients.
    project_id: str | None = None
    hidden: bool | None = None

    def to_spec(self) -> AgentSpec:
        if self.llm_config is not None:
            llm = self.llm_config.model_dump(exclude_none=True)
            if self.context_window_limit:
                llm["context_window"] = self.context_window_limit
        else:
            llm = llm_config_from_handle(self.model or "openai/gpt-4o-mini", self.context_window_limit)
        return AgentSpec(
            name=self.name,
            system=self.system,
            description=self.description,
            agent_type=self.agent_type,
            llm_config=llm,
            embedding_config=self.embedding_config.model_dump(exclude_none=True) if self.embedding_config else None,
            memory_blocks=[b.model_dump(exclude_none=True) for b in self.memory_blocks],
            block_ids=self.block_ids,
            tool_rules=self.tool_rules,
            tags=self.tags,
            metadata=self.metadata or {},
            tool_ids=self.tool_ids,
            tool_names=self.tools,
            tool_env=_tool_env(self.tool_exec_environment_variables, self.secrets),
        )


def _tool_env(variables: dict[str, str] | None, secrets: dict[str, str] | None) -> dict[str, str] | None:
    if variables is None and secrets is None:
        return None
    return {**(variables or {}), **(secrets or {})}


class UpdateAgent(Request):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    system: str | None = None
    description: str | None = None
    llm_config: LLMConfigIn | None = None
    model: Handle | None = None
    embedding_config: EmbeddingConfigIn | None = None
    block_ids: list[str] | None = None
    tool_rules: list[dict[str, Any]] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tool_ids: list[str] | None = None
    tool_exec_environment_variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    project_id: str | None = None
    hidden: bool | None = None

    def to_changes(self) -> dict[str, Any]:
        data = self.model_dump(exclude_unset=True)
        changes: dict[str, Any] = {}
        for key in ("name", "system", "description", "tool_rules", "tags", "metadata", "block_ids"):
            if key in data:
                changes[key] = data[key] if data[key] is not None or key == "description" else _empty(key)
        if self.llm_config is not None:
            changes["llm_config"] = self.llm_config.model_dump(exclude_none=True)
        elif self.model is not None:
            changes["llm_config"] = llm_config_from_handle(self.model)
        if self.embedding_config is not None:
            changes["embedding_config"] = self.embedding_config.model_dump(exclude_none=True)
        if self.tool_ids is not None:
            changes["tool_ids"] = self.tool_ids
        env = _tool_env(self.tool_exec_environment_variables, self.secrets)
        if env is not None:
            changes["tool_env"] = env
        return changes


def _empty(key: str) -> Any:
    return {"tool_rules": [], "tags": [], "metadata": {}, "block_ids": []}.get(key, "")


def masked(variables: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool variables as every response shows them: name and description, the value masked (neither
    the plaintext nor its sealed form ever leaves the server)."""
    return [{"key": v["key"], "value": catalog.MASKED, "description": v.get("description")} for v in variables]


def letta_embedding_config(config: dict[str, Any]) -> dict[str, Any]:
    """An embedding config as Letta shows it: the local model's older aliases (``local``, ``onnx``,
    stored by earlier releases) are ``hugging-face``, the endpoint type Letta's types allow for it."""
    kind = str(config.get("embedding_endpoint_type", "")).lower()
    if kind in LOCAL_KINDS and kind != LETTA_LOCAL_KIND:
        return {**config, "embedding_endpoint_type": LETTA_LOCAL_KIND}
    return config


class Memory(Response):
    blocks: list[Block]
    prompt_template: str | None = None


class AgentState(Response):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    id: str
    name: str
    system: str
    agent_type: str
    description: str | None = None
    llm_config: dict[str, Any]
    embedding_config: dict[str, Any]
    model: str | None = None
    embedding: str | None = None
    memory: Memory
    blocks: list[Block]
    tools: list[dict[str, Any]]
    tool_ids: list[str]
    sources: list[dict[str, Any]] = Field(default_factory=list)
    tool_rules: list[dict[str, Any]]
    tool_exec_environment_variables: list[dict[str, Any]] = Field(default_factory=list)
    secrets: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_view(cls, view: AgentView) -> AgentState:
        a = view.agent
        llm = a["llm_config"] or {}
        emb = a["embedding_config"] or {}
        blocks = [Block.from_row(b) for b in view.blocks]
        return cls(
            id=a["id"],
            name=a["name"],
            system=a["system"],
            agent_type=a["agent_type"],
            description=a["description"],
            llm_config=llm,
            embedding_config=letta_embedding_config(emb),
            model=llm.get("handle") or (f"{llm['model_endpoint_type']}/{llm['model']}" if llm.get("model") else None),
            embedding=emb.get("handle") or emb.get("embedding_model"),
            memory=Memory(blocks=blocks),
            blocks=blocks,
            tools=view.tools,
            tool_ids=[t["id"] for t in view.tools],
            tool_rules=a["tool_rules"],
            tags=a["tags"],
            tool_exec_environment_variables=masked(view.tool_env),
            secrets=masked(view.tool_env),
            metadata=a["metadata"],
            created_at=a["created_at"],
            updated_at=a["updated_at"],
        )
