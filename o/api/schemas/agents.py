"""Letta's agent requests: CreateAgentRequest and UpdateAgent (the AgentState they answer is
:mod:`o.api.schemas.agent_state`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import ConfigDict, Field, field_validator

from o.agent.lifecycle import DEFAULT_EMBEDDING_CONFIG, AgentSpec, InitialMessage
from o.api.schemas.agent_settings import (
    FILE_CAPS,
    UNSUPPORTED,
    MaxFilesOpen,
    ModelSettings,
    ResponseFormat,
    WindowChars,
    apply_model_settings,
    refuse_unsupported,
    stored_format,
)
from o.api.schemas.blocks import CreateBlock
from o.api.schemas.common import Request
from o.api.schemas.model_configs import (
    MAX_CONTEXT_WINDOW,
    EmbeddingConfigIn,
    Handle,
    LLMConfigIn,
    llm_config_from_handle,
)
from o.api.schemas.send import MessageInput
from o.errors import InvalidInput
from o.memory.embeddings import config_for_handle


def _embedding_from(
    handle: str | None, config: EmbeddingConfigIn | None, chunk_size: int | None
) -> dict[str, Any] | None:
    """The embedding_config of Letta's ``embedding_config`` (wins) or ``embedding`` handle (else the
    default model), with the deprecated ``embedding_chunk_size`` applied; None when none of them is given."""
    if config is not None:
        out = config.model_dump(exclude_none=True)
    elif handle is not None:
        out = config_for_handle(handle)  # InvalidInput (422) naming the handle O cannot size
    elif chunk_size is not None:
        out = dict(DEFAULT_EMBEDDING_CONFIG)
    else:
        return None
    if chunk_size is not None:
        out["embedding_chunk_size"] = chunk_size
    return out


# The fields of ModelFields that change the llm_config
MODEL_FIELDS = frozenset(
    {"llm_config", "model", "context_window_limit", "model_settings", "parallel_tool_calls", "response_format"}
    | {"max_tokens", "max_reasoning_tokens", "enable_reasoner", "reasoning"}
)


class ModelFields(Request):
    """The fields of create and update that make up the agent's llm_config (see agent_settings)."""

    llm_config: LLMConfigIn | None = None
    model: Handle | None = Field(default=None, description="a handle such as 'openai/gpt-4o-mini'")
    context_window_limit: int | None = Field(default=None, ge=256, le=MAX_CONTEXT_WINDOW)
    model_settings: ModelSettings | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_CONTEXT_WINDOW)
    max_reasoning_tokens: int | None = Field(default=None, ge=0, le=MAX_CONTEXT_WINDOW)
    enable_reasoner: bool | None = None
    reasoning: bool | None = None
    embedding: str | None = Field(
        default=None, description="an embedding handle such as 'openai/text-embedding-3-small'"
    )
    embedding_config: EmbeddingConfigIn | None = None

    def named_models(self) -> list[dict[str, Any]]:
        """The llm_configs of the models this request names itself (its ``llm_config``, its ``model`` handle):
        what is checked against the provider's model list, never O's default or an agent's current model."""
        named = [self.llm_config.model_dump(exclude_none=True)] if self.llm_config is not None else []
        return named + ([llm_config_from_handle(self.model)] if self.model is not None else [])

    embedding_chunk_size: int | None = Field(default=None, ge=1, le=100_000)

    def llm_changes(self, base: dict[str, Any]) -> dict[str, Any]:
        """``base`` (an llm_config) with every model field of this request applied, in Letta's order."""
        llm = dict(base)
        if self.context_window_limit:
            llm["context_window"] = self.context_window_limit
        if self.model_settings is not None:
            llm = apply_model_settings(llm, self.model_settings)
        if self.parallel_tool_calls is not None:
            llm["parallel_tool_calls"] = self.parallel_tool_calls
        if "response_format" in self.model_fields_set:
            llm["response_format"] = stored_format(self.response_format)
        if self.max_tokens is not None:
            llm["max_tokens"] = self.max_tokens
        if self.max_reasoning_tokens is not None:
            llm["max_reasoning_tokens"] = self.max_reasoning_tokens
        for flag in (self.enable_reasoner, self.reasoning):
            if flag is not None:
                llm["enable_reasoner"] = flag
        return llm

    def changes_model(self) -> bool:
        return bool(self.model_fields_set & MODEL_FIELDS)

    def embedding_changes(self, current: dict[str, Any] | None = None) -> dict[str, Any] | None:
        given = _embedding_from(self.embedding, self.embedding_config, None)
        if given is None and self.embedding_chunk_size is not None and current is not None:
            given = dict(current)
        if given is not None and self.embedding_chunk_size is not None:
            given["embedding_chunk_size"] = self.embedding_chunk_size
        return given


B = TypeVar("B", bound="ModelFields")


def with_listed_embedding(body: B, listed: Callable[[str], dict[str, Any] | None]) -> B:
    """``body`` with the embedding_config of its ``embedding`` handle taken from the operator's listed
    models (``listed``) when O's own table cannot size the handle; unchanged otherwise."""
    if body.embedding is None or body.embedding_config is not None:
        return body
    try:
        config_for_handle(body.embedding)
    except InvalidInput:
        found = listed(body.embedding)
        if found is not None:
            return body.model_copy(update={"embedding_config": EmbeddingConfigIn.model_validate(found)})
    return body


class CreateAgent(ModelFields):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "demo",
                    "model": "openai/gpt-4o-mini",
                    "memory_blocks": [
                        {"label": "human", "value": "Name: Ada"},
                        {"label": "persona", "value": "I am a careful assistant."},
                    ],
                }
            ]
        }
    )
    name: str = Field(default="agent", min_length=1, max_length=200)
    system: str | None = None
    description: str | None = None
    agent_type: str = "memgpt_v2_agent"
    memory_blocks: list[CreateBlock] = Field(default_factory=list)
    block_ids: list[str] = Field(default_factory=list)
    tool_rules: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    tool_ids: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="tool names to attach")
    include_base_tools: bool = Field(default=True, description="attach the base tools of the agent's type")
    tool_exec_environment_variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="Letta's newer name for the tool variables")
    timezone: str | None = Field(default=None, description="an IANA time zone name; the prompt shows times in it")
    enable_sleeptime: bool | None = Field(default=None, description="false: no automatic sleep-time passes")
    message_buffer_autoclear: bool | None = Field(
        default=None, description="true: each finished run clears the conversation's context (memory stays)"
    )
    initial_message_sequence: list[MessageInput] | None = None
    max_files_open: MaxFilesOpen = None
    per_file_view_window_char_limit: WindowChars = None
    # Letta fields O cannot honour: refused unless unset or off (agent_settings.UNSUPPORTED says why)
    base_template_id: Any = None
    template_id: Any = None
    from_template: Any = None
    template: Any = None
    memory_variables: Any = None
    project: Any = None
    project_id: Any = None
    hidden: Any = None
    compaction_settings: Any = None
    folder_ids: Any = None
    source_ids: Any = None
    include_default_source: Any = None
    include_base_tool_rules: Any = None

    # attached after the agent is made, in the same transaction (o.agent.identities.set_for_agent)
    identity_ids: list[str] | None = None

    _refused = field_validator(*UNSUPPORTED, mode="before", check_fields=False)(refuse_unsupported)

    def to_spec(self) -> AgentSpec:
        if self.llm_config is not None:
            base = self.llm_config.model_dump(exclude_none=True)
        else:
            base = llm_config_from_handle(self.model or "openai/gpt-4o-mini")
        return AgentSpec(
            name=self.name,
            system=self.system,
            description=self.description,
            agent_type=self.agent_type,
            llm_config=self.llm_changes(base),
            embedding_config=_embedding_from(self.embedding, self.embedding_config, self.embedding_chunk_size),
            memory_blocks=[b.model_dump(exclude_none=True) for b in self.memory_blocks],
            block_ids=self.block_ids,
            tool_rules=self.tool_rules,
            tags=self.tags,
            metadata=self.metadata or {},
            tool_ids=self.tool_ids,
            tool_names=self.tools,
            tool_env=_tool_env(self.tool_exec_environment_variables, self.secrets),
            timezone=self.timezone or "UTC",
            enable_sleeptime=self.enable_sleeptime is not False,
            message_buffer_autoclear=self.message_buffer_autoclear is True,
            max_files_open=self.max_files_open,
            per_file_view_window_char_limit=self.per_file_view_window_char_limit,
            include_base_tools=self.include_base_tools,
            initial_messages=None
            if self.initial_message_sequence is None
            else [_initial(m) for m in self.initial_message_sequence],
        )


def _initial(message: MessageInput) -> InitialMessage:
    given = message.to_input()
    return InitialMessage(given.role, given.text, given.name, given.otid, given.sender_id)


def _tool_env(variables: dict[str, str] | None, secrets: dict[str, str] | None) -> dict[str, str] | None:
    if variables is None and secrets is None:
        return None
    return {**(variables or {}), **(secrets or {})}


# fields an update sets when given (null keeps the agent's value)
_SET_WHEN_GIVEN = ("timezone", "enable_sleeptime", "message_buffer_autoclear", *FILE_CAPS)


class UpdateAgent(ModelFields):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    system: str | None = None
    description: str | None = None
    block_ids: list[str] | None = None
    tool_rules: list[dict[str, Any]] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    tool_ids: list[str] | None = None
    tool_exec_environment_variables: dict[str, str] | None = None
    secrets: dict[str, str] | None = None
    timezone: str | None = None
    enable_sleeptime: bool | None = None
    message_buffer_autoclear: bool | None = None
    max_files_open: MaxFilesOpen = None
    per_file_view_window_char_limit: WindowChars = None
    # Letta fields O cannot honour: refused unless unset or off (agent_settings.UNSUPPORTED says why)
    base_template_id: Any = None
    template_id: Any = None
    project_id: Any = None
    hidden: Any = None
    compaction_settings: Any = None
    folder_ids: Any = None
    source_ids: Any = None
    message_ids: Any = None
    last_run_completion: Any = None
    last_run_duration_ms: Any = None
    last_stop_reason: Any = None

    # attached after the agent is made, in the same transaction (o.agent.identities.set_for_agent)
    identity_ids: list[str] | None = None

    _refused = field_validator(*UNSUPPORTED, mode="before", check_fields=False)(refuse_unsupported)

    def to_changes(self, agent: dict[str, Any]) -> dict[str, Any]:
        """The columns to change on ``agent`` (its row as it is now)."""
        data = self.model_dump(exclude_unset=True)
        changes: dict[str, Any] = {}
        for key in ("name", "system", "description", "tool_rules", "tags", "metadata", "block_ids"):
            if key in data:
                changes[key] = data[key] if data[key] is not None or key == "description" else _empty(key)
        for key in _SET_WHEN_GIVEN:
            if data.get(key) is not None:
                changes[key] = data[key]
        if self.changes_model():
            if self.llm_config is not None:
                base = self.llm_config.model_dump(exclude_none=True)
            elif self.model is not None:
                base = llm_config_from_handle(self.model)
            else:
                base = agent["llm_config"]
            changes["llm_config"] = self.llm_changes(base)
        embedding = self.embedding_changes(agent["embedding_config"])
        if embedding is not None:
            changes["embedding_config"] = embedding
        if self.tool_ids is not None:
            changes["tool_ids"] = self.tool_ids
        env = _tool_env(self.tool_exec_environment_variables, self.secrets)
        if env is not None:
            changes["tool_env"] = env
        return changes


def _empty(key: str) -> Any:
    return {"tool_rules": [], "tags": [], "metadata": {}, "block_ids": []}.get(key, "")
