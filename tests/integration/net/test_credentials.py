"""The operator's provider keys go to the operator's endpoints and nowhere else: the real openai and
anthropic SDKs, sending to a capture server on loopback that records every header it receives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from o.llm.client import ClientOptions, LLMError
from o.llm.config import LLMConfig
from o.llm.endpoints import EndpointRefused, EndpointRules
from o.llm.keys import StaticKeySource
from o.llm.providers import client_for
from o.llm.types import ChatMessage, ChatRequest
from o.memory.embeddings import Embedders, EmbeddingConfig
from tests.servers.capture import Answer, CaptureServer
from tests.servers.fixtures import FAST_OPTIONS, LOCAL_EMBEDDING_ENDPOINTS, LOOPBACK, operator_at

OPERATOR_KEYS = {"openai": "sk-operator-openai", "anthropic": "sk-operator-anthropic", "groq": "gsk-operator-groq"}
KEYS = StaticKeySource(OPERATOR_KEYS)
# Ambient operator credentials the SDKs would read from the environment by themselves.
AMBIENT = {
    "OPENAI_API_KEY": "sk-ambient-openai",
    "OPENAI_ADMIN_KEY": "sk-ambient-admin",
    "OPENAI_ORG_ID": "org-ambient",
    "OPENAI_PROJECT_ID": "proj-ambient",
    "ANTHROPIC_API_KEY": "sk-ambient-anthropic",
    "ANTHROPIC_AUTH_TOKEN": "sk-ambient-token",
}
# An error answer ends each call after one request (the test is about what was sent, not the reply).
REFUSAL = Answer(400, b'{"error": {"type": "invalid_request_error", "message": "captured"}}')
OPTIONS = replace(FAST_OPTIONS, retry=replace(FAST_OPTIONS.retry, max_retries=0))


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    with CaptureServer(REFUSAL) as server:
        yield server


@pytest.fixture
def ambient(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AMBIENT.items():
        monkeypatch.setenv(name, value)


def _config(provider: str, endpoint: str) -> LLMConfig:
    return LLMConfig.model_validate({"model": "m", "model_endpoint_type": provider, "model_endpoint": endpoint})


def _chat(provider: str, endpoint: str, options: ClientOptions) -> None:
    with pytest.raises(LLMError):
        client_for(_config(provider, endpoint), KEYS, options).chat(ChatRequest([ChatMessage.user("hi")]))


def _secrets() -> list[str]:
    return [*OPERATOR_KEYS.values(), *AMBIENT.values()]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
@pytest.mark.usefixtures("ambient")
def test_operator_key_never_reaches_a_tenant_endpoint(provider: str, capture: CaptureServer) -> None:
    # the endpoint is one the operator lets agents name (127.0.0.1), not the operator's own
    _chat(provider, capture.url(), OPTIONS)
    [request] = capture.requests
    sent = request.header_values()
    assert not [secret for secret in _secrets() if secret in sent], sent
    assert "openai-organization" not in request.headers and "openai-project" not in request.headers


@pytest.mark.parametrize("provider", ["openai", "anthropic", "groq"])
def test_operator_key_goes_to_the_operators_endpoint(provider: str, capture: CaptureServer) -> None:
    options = operator_at(OPTIONS, **{provider: capture.url()})
    _chat(provider, capture.url(), options)
    [request] = capture.requests
    assert OPERATOR_KEYS[provider] in request.header_values()
    # and only its own provider's key
    assert not [k for p, k in OPERATOR_KEYS.items() if p != provider and k in request.header_values()]


def test_the_public_endpoint_in_a_config_means_the_operators_endpoint(capture: CaptureServer) -> None:
    """Letta writes the provider's public endpoint into every config: it goes where the operator says."""
    options = operator_at(OPTIONS, openai=capture.url())
    _chat("openai", "https://api.openai.com/v1", options)
    [request] = capture.requests
    assert request.path == "/v1/chat/completions" and OPERATOR_KEYS["openai"] in request.header_values()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_endpoint_the_operator_does_not_allow_is_refused_before_any_request(
    provider: str, capture: CaptureServer
) -> None:
    options = replace(OPTIONS, endpoints=EndpointRules.for_llm())  # the default: no endpoints for agents to name
    with pytest.raises(EndpointRefused, match="O_LLM_ALLOWED_ENDPOINTS") as info:
        client_for(_config(provider, capture.url()), KEYS, options)
    assert info.value.status_code == 422 and info.value.details["field"] == "model_endpoint"
    assert capture.requests == []


def _embedding(endpoint: str, kind: str = "openai") -> EmbeddingConfig:
    return EmbeddingConfig(
        embedding_endpoint_type=kind, embedding_endpoint=endpoint, embedding_model="m", embedding_dim=8
    )


@pytest.mark.usefixtures("ambient")
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_operator_key_never_reaches_a_tenant_embedding_endpoint(kind: str, capture: CaptureServer) -> None:
    embedders = Embedders(
        StaticKeySource({"openai": "sk-operator-openai", "ollama": "sk-operator-ollama"}),
        endpoints=LOCAL_EMBEDDING_ENDPOINTS,
        outbound=LOOPBACK,
    )
    with pytest.raises(LLMError, match=f"{kind} returned HTTP 400"):
        embedders.for_config(_embedding(capture.url(), kind)).embed(["hello"])
    [request] = capture.requests
    sent = request.header_values()
    assert not [s for s in [*_secrets(), "sk-operator-ollama"] if s in sent], sent


def test_operator_key_goes_to_the_operators_embedding_endpoint(capture: CaptureServer) -> None:
    endpoints = replace(LOCAL_EMBEDDING_ENDPOINTS, operator=(("openai", capture.url()),))
    embedders = Embedders(StaticKeySource({"openai": "sk-operator-openai"}), endpoints=endpoints, outbound=LOOPBACK)
    with pytest.raises(LLMError):
        embedders.for_config(_embedding("https://api.openai.com/v1")).embed(["hello"])
    [request] = capture.requests
    assert request.path == "/v1/embeddings" and "sk-operator-openai" in request.header_values()


def test_an_embedding_endpoint_the_operator_does_not_allow_is_refused(capture: CaptureServer) -> None:
    embedders = Embedders(StaticKeySource({"openai": "sk-operator-openai"}), outbound=LOOPBACK)
    with pytest.raises(EndpointRefused, match="embedding_endpoint"):
        embedders.for_config(_embedding(capture.url()))
    assert capture.requests == []
