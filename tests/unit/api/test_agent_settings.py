"""Letta's model settings onto an llm_config and back, and embedding handles onto embedding configs."""

from __future__ import annotations

import pytest

from o.api.schemas.agent_settings import ModelSettings, apply_model_settings
from o.api.schemas.agent_state import model_settings_of
from o.errors import InvalidInput
from o.llm.config import LLMConfig
from o.memory.embeddings import config_for_handle

OPENAI = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "context_window": 128000}


def test_settings_round_trip() -> None:
    settings = ModelSettings.model_validate(
        {
            "provider_type": "openai",
            "temperature": 0.3,
            "max_output_tokens": 500,
            "parallel_tool_calls": True,
            "reasoning": {"reasoning_effort": "low"},
            "response_format": {"type": "json_object"},
        }
    )
    llm = apply_model_settings(OPENAI, settings)
    config = LLMConfig.model_validate(llm)
    assert (config.temperature, config.max_tokens, config.parallel_tool_calls) == (0.3, 500, True)
    assert (config.reasoning_effort, config.response_format) == ("low", {"type": "json_object"})
    shown = model_settings_of(llm)
    assert shown["reasoning"] == {"reasoning_effort": "low"} and shown["max_output_tokens"] == 500


def test_reasoning_none_and_text_format_turn_things_off() -> None:
    llm = apply_model_settings(
        {**OPENAI, "reasoning_effort": "high", "response_format": {"type": "json_object"}},
        ModelSettings.model_validate({"reasoning": {"reasoning_effort": "none"}, "response_format": {"type": "text"}}),
    )
    config = LLMConfig.model_validate(llm)
    assert config.reasoning_effort is None and config.response_format is None
    assert LLMConfig.model_validate({**OPENAI, "response_format": {"type": "text"}}).response_format is None


def test_anthropic_thinking_and_provider_mismatch() -> None:
    anthropic = {"model": "claude-haiku-4-5", "model_endpoint_type": "anthropic", "context_window": 200000}
    llm = apply_model_settings(
        anthropic,
        ModelSettings.model_validate({"thinking": {"type": "enabled", "budget_tokens": 4096}, "effort": "low"}),
    )
    assert (llm["enable_reasoner"], llm["max_reasoning_tokens"], llm["reasoning_effort"]) == (True, 4096, "low")
    assert model_settings_of(llm)["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    with pytest.raises(InvalidInput, match="provider_type 'openai'"):
        apply_model_settings(anthropic, ModelSettings(provider_type="openai"))
    # Ollama speaks OpenAI's API, and Letta has no Ollama settings shape
    ollama = {"model": "llama3.2", "model_endpoint_type": "ollama", "context_window": 8192}
    assert apply_model_settings(ollama, ModelSettings(provider_type="openai", temperature=0.1))["temperature"] == 0.1
    assert model_settings_of(ollama)["provider_type"] == "openai"


@pytest.mark.parametrize(
    ("handle", "kind", "dim"),
    [
        ("openai/text-embedding-3-small", "openai", 1536),
        ("openai/text-embedding-3-large", "openai", 3072),
        ("ollama/nomic-embed-text:latest", "ollama", 768),
        ("local/all-MiniLM-L6-v2", "hugging-face", 384),
        ("hugging-face/sentence-transformers/all-MiniLM-L6-v2", "hugging-face", 384),
    ],
)
def test_embedding_handles(handle: str, kind: str, dim: int) -> None:
    config = config_for_handle(handle)
    assert (config["embedding_endpoint_type"], config["embedding_dim"]) == (kind, dim)


@pytest.mark.parametrize(
    ("handle", "named"), [("openai/nope", "'nope'"), ("cohere/embed-v3", "'cohere'"), ("nomodel", "provider/model")]
)
def test_unknown_embedding_handles_are_named(handle: str, named: str) -> None:
    with pytest.raises(InvalidInput, match=named):
        config_for_handle(handle)
