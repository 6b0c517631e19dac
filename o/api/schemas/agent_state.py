"""Letta's AgentState: an agent as every response shows it.

Apart from the agents' request shapes (:mod:`o.api.schemas.agents`): a GET of an agent, the request an API
Lambda's cold start serves most, builds none of them and imports nothing that creating an agent needs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from o.agent.views import AgentView
from o.api.schemas.blocks import Block
from o.api.schemas.common import Response
from o.memory.embeddings import LETTA_LOCAL_KIND, LOCAL_KINDS
from o.tools.secrets.envelope import MASKED

# endpoint types that serve OpenAI's API and take OpenAI's model_settings
OPENAI_COMPATIBLE = frozenset({"ollama", "vllm", "lmstudio"})


def model_settings_of(llm: dict[str, Any]) -> dict[str, Any]:
    """The agent's ``llm_config`` in Letta's ``model_settings`` shape (what AgentState shows)."""
    provider = llm.get("model_endpoint_type")
    settings: dict[str, Any] = {
        # Letta's types have no Ollama, vLLM or LM Studio settings; these OpenAI-compatible servers take
        # OpenAI's (see apply_model_settings)
        "provider_type": "openai" if provider in OPENAI_COMPATIBLE else provider,
        "temperature": llm.get("temperature", 0.7),
        "max_output_tokens": llm.get("max_tokens") or 4096,
        "parallel_tool_calls": bool(llm.get("parallel_tool_calls", False)),
        "response_format": llm.get("response_format") or {"type": "text"},
    }
    if llm.get("model_endpoint_type") == "anthropic":
        budget = int(llm.get("max_reasoning_tokens") or 0)
        enabled = bool(llm.get("enable_reasoner")) and budget > 0
        settings["thinking"] = {"type": "enabled" if enabled else "disabled", "budget_tokens": budget}
        if llm.get("reasoning_effort") in ("low", "medium", "high"):
            settings["effort"] = llm["reasoning_effort"]
    elif llm.get("reasoning_effort"):
        settings["reasoning"] = {"reasoning_effort": llm["reasoning_effort"]}
    return settings


def masked(variables: list[dict[str, Any]], agent_id: str) -> list[dict[str, Any]]:
    """Tool variables as every response shows them (Letta's AgentEnvironmentVariable): name and
    description, the value masked (neither the plaintext nor its sealed form ever leaves the server)."""
    return [
        {"agent_id": agent_id, "key": v["key"], "value": MASKED, "description": v.get("description")} for v in variables
    ]


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
    identity_ids: list[str] = Field(default_factory=list)
    sources: list[dict[str, Any]] = Field(default_factory=list)
    tool_rules: list[dict[str, Any]]
    tool_exec_environment_variables: list[dict[str, Any]] = Field(default_factory=list)
    secrets: list[dict[str, Any]] = Field(default_factory=list)
    tags: list[str]
    metadata: dict[str, Any]
    timezone: str = "UTC"
    enable_sleeptime: bool = True
    message_buffer_autoclear: bool = False
    max_files_open: int | None = None
    per_file_view_window_char_limit: int | None = None
    response_format: dict[str, Any] | None = None
    model_settings: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_view(cls, view: AgentView) -> AgentState:
        a = view.agent
        llm = a["llm_config"] or {}
        emb = a["embedding_config"] or {}
        blocks = [Block.from_row(b) for b in view.blocks]
        # Built, not validated: every field comes from a stored row of the type it declares (the blocks,
        # whose timestamps arrive as JSON text, are validated above). Validating the tools' schemas and
        # the configs again, dict by dict, cost a GET agent a fifth of its CPU.
        return cls.model_construct(
            id=a["id"],
            name=a["name"],
            system=a["system"],
            agent_type=a["agent_type"],
            description=a["description"],
            llm_config=llm,
            embedding_config=letta_embedding_config(emb),
            model=llm.get("handle") or (f"{llm['model_endpoint_type']}/{llm['model']}" if llm.get("model") else None),
            embedding=emb.get("handle") or emb.get("embedding_model"),
            memory=Memory.model_construct(blocks=blocks, prompt_template=None),
            blocks=blocks,
            tools=view.tools,
            tool_ids=[t["id"] for t in view.tools],
            identity_ids=view.identity_ids,
            # every field given: model_construct resolves a missing one's default_factory by inspecting
            # its signature, on every call (a third of a list's CPU)
            sources=[],
            tool_rules=a["tool_rules"],
            tags=a["tags"],
            tool_exec_environment_variables=masked(view.tool_env, a["id"]),
            secrets=masked(view.tool_env, a["id"]),
            metadata=a["metadata"],
            timezone=a.get("timezone") or "UTC",
            enable_sleeptime=a.get("enable_sleeptime", True),
            message_buffer_autoclear=a.get("message_buffer_autoclear", False),
            max_files_open=a.get("max_files_open"),
            per_file_view_window_char_limit=a.get("per_file_view_window_char_limit"),
            response_format=llm.get("response_format") or {"type": "text"},
            model_settings=model_settings_of(llm),
            created_at=a["created_at"],
            updated_at=a["updated_at"],
        )
