from __future__ import annotations

import pytest
from pydantic import ValidationError

from o.llm.config import DEFAULT_ENDPOINTS, LLMConfig, parse_handle


@pytest.mark.parametrize(
    ("handle", "endpoint_type", "model", "endpoint"),
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini", "https://api.openai.com/v1"),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5", "https://api.anthropic.com"),
        ("groq/llama-3.3-70b-versatile", "groq", "llama-3.3-70b-versatile", "https://api.groq.com/openai/v1"),
        ("ollama/llama3.2:3b", "ollama", "llama3.2:3b", "http://localhost:11434/v1"),
        # Model names may contain slashes (Groq hosts "meta-llama/..." models).
        ("groq/meta-llama/llama-4-scout", "groq", "meta-llama/llama-4-scout", "https://api.groq.com/openai/v1"),
    ],
)
def test_handle_maps_to_endpoint_type_model_and_default_endpoint(
    handle: str, endpoint_type: str, model: str, endpoint: str
) -> None:
    config = LLMConfig.from_handle(handle)
    assert (config.model_endpoint_type, config.model, config.model_endpoint) == (endpoint_type, model, endpoint)
    assert config.handle == handle
    assert config.context_window > 0


def test_lettas_own_llm_config_json_is_accepted_and_unknown_fields_ignored() -> None:
    # As returned by Letta's GET /v1/agents/{id} (trimmed), including fields O does not use.
    letta = {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": "https://api.openai.com/v1",
        "provider_name": "openai",
        "provider_category": "base",
        "model_wrapper": None,
        "context_window": 32000,
        "put_inner_thoughts_in_kwargs": True,
        "handle": "openai/gpt-4o-mini",
        "temperature": 0.7,
        "max_tokens": 4096,
        "enable_reasoner": False,
        "reasoning_effort": None,
        "max_reasoning_tokens": 0,
        "frequency_penalty": 1.0,
        "compatibility_type": None,
        "verbosity": "medium",
        "tier": None,
        "parallel_tool_calls": False,
        "response_format": None,
    }
    config = LLMConfig.model_validate(letta)
    assert config.context_window == 32000
    assert config.put_inner_thoughts_in_kwargs is True
    assert config.frequency_penalty == 1.0
    assert "verbosity" not in config.model_dump()


def test_explicit_fields_win_over_handle_and_defaults() -> None:
    config = LLMConfig.model_validate(
        {"handle": "openai/gpt-4o", "model": "gpt-4o-2024-08-06", "model_endpoint": "http://proxy/v1"}
    )
    assert config.model == "gpt-4o-2024-08-06"
    assert config.model_endpoint == "http://proxy/v1"
    assert config.handle == "openai/gpt-4o"


def test_handle_is_built_when_missing_and_endpoint_type_is_case_insensitive() -> None:
    config = LLMConfig.model_validate({"model": "claude-haiku-4-5", "model_endpoint_type": "Anthropic"})
    assert config.handle == "anthropic/claude-haiku-4-5"
    assert config.model_endpoint == DEFAULT_ENDPOINTS["anthropic"]
    assert config.context_window == 200_000


def test_known_models_get_their_own_context_window() -> None:
    assert LLMConfig.from_handle("openai/gpt-4.1-mini").context_window == 1_047_576
    assert LLMConfig.from_handle("openai/gpt-4").context_window == 8_192
    assert LLMConfig.from_handle("ollama/qwen3").context_window == 8_192


@pytest.mark.parametrize(
    "data",
    [
        {"handle": "azure/gpt-4o"},
        {"handle": "gpt-4o"},
        {"handle": "openai/"},
        {"model": "gpt-4o", "model_endpoint_type": "together", "context_window": 10},
        {"model": "gpt-4o"},
        {"handle": "openai/gpt-4o", "temperature": 3},
        {"handle": "openai/gpt-4o", "context_window": 0},
        {"handle": "openai/gpt-4o", "reasoning_effort": "extreme"},
    ],
)
def test_invalid_configs_are_rejected_with_a_message(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        LLMConfig.model_validate(data)


def test_parse_handle_names_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown provider 'azure'"):
        parse_handle("azure/gpt-4o")
