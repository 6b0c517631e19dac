"""The test servers' embeddings and model routes, through the real openai SDK."""

from __future__ import annotations

import math

import anthropic
import openai

from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_deterministic_unit_vectors_in_both_encodings(openai_server: OpenAIServer) -> None:
    sdk = openai.OpenAI(api_key="k", base_url=openai_server.base_url, max_retries=0)
    texts = ["Ana loves green tea", "Ana loves black tea", "The rocket launched at dawn"]
    # The SDK asks for base64 by default and decodes it.
    default = sdk.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=64)
    floats = sdk.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=64, encoding_format="float")
    a, b, c = (d.embedding for d in default.data)
    assert len(a) == 64 and math.isclose(math.sqrt(_cos(a, a)), 1.0, rel_tol=1e-5)
    for x, y in zip(default.data, floats.data, strict=True):
        assert all(
            math.isclose(p, q, rel_tol=1e-5, abs_tol=1e-6) for p, q in zip(x.embedding, y.embedding, strict=True)
        )
    assert _cos(a, b) > _cos(a, c)
    again = sdk.embeddings.create(model="text-embedding-3-small", input="Ana loves green tea", dimensions=64)
    assert again.data[0].embedding == a
    assert openai_server.embedding_requests[0]["dimensions"] == 64
    assert default.usage.prompt_tokens > 0


def test_embedding_dimension_defaults_to_the_servers(openai_server: OpenAIServer) -> None:
    sdk = openai.OpenAI(api_key="k", base_url=openai_server.base_url, max_retries=0)
    result = sdk.embeddings.create(model="text-embedding-3-small", input="x")
    assert len(result.data[0].embedding) == openai_server.embedding_dim


def test_models_are_listed(openai_server: OpenAIServer, anthropic_server: AnthropicServer) -> None:
    sdk = openai.OpenAI(api_key="k", base_url=openai_server.base_url, max_retries=0)
    assert "gpt-4o-mini" in [m.id for m in sdk.models.list()]
    claude = anthropic.Anthropic(api_key="k", base_url=anthropic_server.base_url, max_retries=0)
    assert [m.id for m in claude.models.list()] == list(anthropic_server.models)


def test_requests_without_a_key_are_refused(openai_server: OpenAIServer) -> None:
    import httpx

    response = httpx.post(f"{openai_server.base_url}/chat/completions", json={"model": "m", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
