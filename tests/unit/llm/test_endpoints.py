"""Where a provider call goes and whose key goes with it: pure decisions over URLs and settings."""

from __future__ import annotations

import pytest

from o.config import settings_from
from o.llm.client import ClientOptions, LLMError, status_error
from o.llm.config import LLMConfig
from o.llm.endpoints import EndpointRefused, EndpointRules, Route
from o.llm.keys import StaticKeySource
from o.llm.providers import api_key_for, route_for
from o.net.outbound import OutboundDenied, OutboundPolicy

SETTINGS = settings_from(
    {
        "O_LLM_OLLAMA_BASE_URL": "http://gpu-box:11434",
        "O_LLM_OPENAI_BASE_URL": "https://gateway.example/openai/v1",
        "O_LLM_ALLOWED_ENDPOINTS": "models.tenant.example, https://shared.example/llm/v1",
        "O_EMBEDDING_OLLAMA_BASE_URL": "http://embed-box:11434",
    }
)
RULES = EndpointRules.for_llm(SETTINGS.llm)


def test_no_endpoint_or_the_providers_public_one_means_the_operators() -> None:
    assert RULES.route("anthropic", None) == Route("https://api.anthropic.com", operator=True)
    # Letta stores the public endpoint in every config; the operator's configured one is used instead
    assert RULES.route("openai", "https://api.openai.com/v1") == Route("https://gateway.example/openai/v1", True)
    assert RULES.route("openai", "https://API.openai.com:443/v1/") == Route("https://gateway.example/openai/v1", True)
    assert RULES.route("anthropic", "https://api.anthropic.com/v1").operator
    assert RULES.route("ollama", "http://gpu-box:11434/v1") == Route("http://gpu-box:11434", operator=True)
    assert RULES.route("ollama", "http://localhost:11434").operator  # Letta's default for Ollama


def test_a_tenant_endpoint_must_be_allowed_and_is_not_the_operators() -> None:
    assert RULES.route("openai", "http://models.tenant.example:8000/v1") == Route(
        "http://models.tenant.example:8000/v1", operator=False
    )
    assert RULES.route("groq", "https://shared.example/llm/v1/groq") == Route(
        "https://shared.example/llm/v1/groq", operator=False
    )
    for refused in (
        "https://shared.example/llm/v10",  # a prefix matches at a path boundary only
        "http://shared.example/llm/v1",  # and with its scheme
        "https://shared.example:8443/llm/v1",  # and port
        "https://evil.example/v1",
        "https://api.openai.com.evil.example/v1",
        "http://gpu-box:11434/v1",  # the operator's Ollama is not the operator's OpenAI
    ):
        with pytest.raises(EndpointRefused, match="O_LLM_ALLOWED_ENDPOINTS") as info:
            RULES.route("openai", refused)
        assert info.value.status_code == 422 and info.value.details["endpoint"] == refused


def test_an_endpoint_that_is_no_http_url_is_refused() -> None:
    for bad in ("file:///etc/passwd", "models.tenant.example", "http://", "http://x:notaport/"):
        with pytest.raises(EndpointRefused, match="not an http or https URL"):
            RULES.route("openai", bad, field="model_endpoint")


def test_embeddings_have_their_own_operator_endpoints_and_the_same_allowlist() -> None:
    rules = EndpointRules.for_embeddings(SETTINGS.embedding, SETTINGS.llm)
    assert rules.route("ollama", None) == Route("http://embed-box:11434", operator=True)
    # unset for embeddings: the operator's OpenAI endpoint for chat
    assert rules.route("openai", "https://api.openai.com/v1") == Route("https://gateway.example/openai/v1", True)
    assert not rules.route("openai", "http://models.tenant.example/v1").operator
    with pytest.raises(EndpointRefused, match="embedding_endpoint"):
        rules.route("openai", "http://gpu-box:11434/v1", field="embedding_endpoint")


def test_the_operators_key_goes_only_with_the_operators_route() -> None:
    keys = StaticKeySource({"openai": "sk-operator"})
    assert api_key_for(Route("https://api.openai.com/v1", True), "openai", keys) == "sk-operator"
    assert api_key_for(Route("http://models.tenant.example/v1", False), "openai", keys) == "no-key"
    assert api_key_for(Route("http://localhost:11434", True), "ollama", keys) == "ollama"
    with pytest.raises(LLMError, match="GROQ_API_KEY"):
        api_key_for(Route("https://api.groq.com/openai/v1", True), "groq", keys)
    # a tenant's endpoint needs no operator key at all
    assert api_key_for(Route("http://models.tenant.example/v1", False), "groq", keys) == "no-key"


def test_route_for_applies_both_the_endpoint_rules_and_the_outbound_policy() -> None:
    rules = EndpointRules.for_llm(settings_from({"O_LLM_ALLOWED_ENDPOINTS": "169.254.169.254"}).llm)
    options = ClientOptions(endpoints=rules, outbound=OutboundPolicy())
    config = LLMConfig.model_validate(
        {"model": "m", "model_endpoint_type": "openai", "model_endpoint": "http://169.254.169.254/v1"}
    )
    with pytest.raises(OutboundDenied, match="link-local"):
        route_for(config, options)
    assert route_for(LLMConfig.from_handle("openai/gpt-4o-mini"), options).operator


def test_an_error_answer_becomes_provider_status_and_a_short_reason() -> None:
    error = status_error("openai", 404, "Error code: 404 - internal-secret", None, "not_found_error")
    assert error.message == "openai returned HTTP 404 (not_found_error)"
    assert error.upstream_message == "Error code: 404 - internal-secret"
    assert "internal-secret" not in str(error.details)
    # a code or type that is not a short identifier is not repeated either
    odd = status_error("groq", 500, "boom", "<script>alert(1)</script>", "a very long sentence with spaces")
    assert odd.message == "groq returned HTTP 500" and odd.retryable
    overflow = status_error("anthropic", 400, "prompt is too long: 210000 tokens > 200000 maximum")
    assert overflow.context_overflow and overflow.message == "anthropic returned HTTP 400 (context_length_exceeded)"
