"""Letta's ``Model`` and ``EmbeddingModel``: one entry of ``GET /v1/models/`` and ``/v1/models/embedding``.

Both carry the new fields (``name``, ``provider_type``, ``max_context_window``) and, for older clients,
the ``LLMConfig`` / ``EmbeddingConfig`` fields an agent created from the handle would hold.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from o.api.schemas.common import Response
from o.llm.catalog import ModelEntry
from o.llm.config import DEFAULT_ENDPOINTS

# Letta's provider types (the SDK's ProviderType): what ?provider_type= takes.
ProviderType = Literal[
    "anthropic", "azure", "baseten", "bedrock", "cerebras", "chatgpt_oauth", "deepseek", "fireworks",
    "google_ai", "google_vertex", "groq", "hugging-face", "letta", "lmstudio_openai", "minimax", "moonshot",
    "moonshot_coding", "mistral", "ollama", "openai", "together", "vllm", "sglang", "openrouter", "xai",
    "zai", "zai_coding",
]  # fmt: skip
ProviderCategory = Literal["base", "byok"]


class Model(Response):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    handle: str
    name: str
    display_name: str
    provider_type: str
    provider_name: str
    provider_category: ProviderCategory = "base"
    model_type: Literal["llm"] = "llm"
    max_context_window: int
    # the LLMConfig an agent created with this handle gets
    model: str
    model_endpoint_type: str
    model_endpoint: str
    context_window: int
    temperature: float = 0.7
    max_tokens: int = 4096
    put_inner_thoughts_in_kwargs: bool = False
    enable_reasoner: bool = False
    parallel_tool_calls: bool = False

    @classmethod
    def of(cls, entry: ModelEntry) -> Model:
        return cls(
            handle=entry.handle,
            name=entry.name,
            display_name=entry.name,
            provider_type=entry.provider_type,
            provider_name=entry.provider,
            max_context_window=entry.context_window,
            model=entry.name,
            model_endpoint_type=entry.provider,
            # what an agent's llm_config holds: the provider's public endpoint stands for the operator's
            # own, whose address (an internal server, perhaps) is not the tenants' to know
            model_endpoint=DEFAULT_ENDPOINTS[entry.provider],
            context_window=entry.context_window,
        )


class EmbeddingModel(Response):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    handle: str
    name: str
    display_name: str
    provider_type: str
    provider_name: str
    provider_category: ProviderCategory = "base"
    model_type: Literal["embedding"] = "embedding"
    # the EmbeddingConfig an agent created with this handle gets
    embedding_model: str
    embedding_endpoint_type: str
    embedding_endpoint: str | None = None
    embedding_dim: int
    embedding_chunk_size: int = 300
    batch_size: int = 32
