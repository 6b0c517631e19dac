"""Model fields on create and update (model_settings, response_format, parallel_tool_calls, the older
top-level fields) reach the provider's request, as the protocol servers captured it; endpoints the
operator does not allow are refused when the agent is saved, not when it is first called."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from letta_client import Letta, UnprocessableEntityError

from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

RANKING = {
    "name": "food_ranking",
    "schema": {
        "type": "object",
        "properties": {"rank": {"type": "integer"}, "reason": {"type": "string"}},
        "required": ["rank", "reason"],
        "additionalProperties": False,
    },
    "strict": True,
}


def _send(letta: Letta, server: OpenAIServer | AnthropicServer, agent_id: str) -> dict[str, Any]:
    """One turn; returns the body of the chat request the provider received."""
    server.push(call("send_message", message='{"rank": 9, "reason": "fresh"}'))
    seen = len(server.requests)
    letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "Rank sushi."}])
    return server.requests[seen]


def test_model_settings_reach_the_openai_request(letta: Letta, openai: OpenAIServer) -> None:
    agent = letta.agents.create(
        model="openai/gpt-4o-mini",
        model_settings={
            "provider_type": "openai",
            "temperature": 0.2,
            "max_output_tokens": 777,
            "parallel_tool_calls": True,
            "response_format": {"type": "json_schema", "json_schema": RANKING},
        },
    )
    assert agent.response_format is not None and agent.response_format.type == "json_schema"
    assert agent.api_model_settings is not None and agent.api_model_settings.temperature == 0.2
    body = _send(letta, openai, agent.id)
    assert body["temperature"] == 0.2
    assert body["max_completion_tokens"] == 777
    assert body["parallel_tool_calls"] is True
    assert body["response_format"] == {"type": "json_schema", "json_schema": RANKING}

    # the older top-level fields, on update: JSON mode, then plain text again
    updated = letta.agents.update(agent.id, response_format={"type": "json_object"}, parallel_tool_calls=False)
    assert updated.response_format is not None and updated.response_format.type == "json_object"
    body = _send(letta, openai, agent.id)
    assert body["response_format"] == {"type": "json_object"} and body["parallel_tool_calls"] is False
    assert body["temperature"] == 0.2  # what the update did not name stays
    letta.agents.update(agent.id, response_format={"type": "text"})
    assert "response_format" not in _send(letta, openai, agent.id)


def test_response_format_reaches_anthropic_as_structured_output(letta: Letta, anthropic: AnthropicServer) -> None:
    agent = letta.agents.create(
        model="anthropic/claude-haiku-4-5", response_format={"type": "json_schema", "json_schema": RANKING}
    )
    updated = letta.agents.update(
        agent.id, model_settings={"provider_type": "anthropic", "thinking": {"type": "enabled", "budget_tokens": 2048}}
    )
    assert updated.llm_config.enable_reasoner is True and updated.llm_config.max_reasoning_tokens == 2048
    body = _send(letta, anthropic, agent.id)
    assert body["output_config"]["format"] == {"type": "json_schema", "schema": RANKING["schema"]}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_bad_model_fields_are_refused_by_name(letta: Letta, http: TestClient) -> None:
    before = len(http.get("/v1/agents/").json())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "nosuch/model-x"}, "unknown provider"),
        ({"model": "openai/gpt-4o-mini", "model_settings": {"provider_type": "anthropic"}}, "provider_type"),
        ({"model_settings": {"temperature": 5}}, "temperature"),
        ({"model_settings": {"strict": True}}, "strict"),
        ({"model_settings": {"top_k": 3}}, "top_k"),
        ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, "schema"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 7}}}},
            "not a valid JSON schema",
        ),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"tool_rules": [{"type": "run_first"}]}, "tool_rules"),
    ]
    for body, named in cases:
        response = http.post("/v1/agents/", json=body)
        assert response.status_code == 422, (body, response.text)
        assert named in response.text, (body, response.text)
    assert len(http.get("/v1/agents/").json()) == before


def test_endpoints_not_allowed_are_refused_when_saved(letta: Letta, http: TestClient) -> None:
    before = len(http.get("/v1/agents/").json())
    foreign = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": "https://llm.example.com/v1"}
    with pytest.raises(UnprocessableEntityError, match="model_endpoint"):
        letta.agents.create(llm_config={**foreign, "context_window": 128000})
    embedding = {
        "embedding_endpoint_type": "openai",
        "embedding_model": "text-embedding-3-small",
        "embedding_dim": 1536,
        "embedding_endpoint": "https://embed.example.com/v1",
    }
    with pytest.raises(UnprocessableEntityError, match="embedding_endpoint"):
        letta.agents.create(embedding_config=embedding)  # type: ignore[arg-type]
    assert len(http.get("/v1/agents/").json()) == before

    agent = letta.agents.create(model="openai/gpt-4o-mini")
    with pytest.raises(UnprocessableEntityError, match="model_endpoint"):
        letta.agents.update(agent.id, llm_config={**foreign, "context_window": 128000})
    with pytest.raises(UnprocessableEntityError, match="embedding_endpoint"):
        letta.agents.update(agent.id, embedding_config=embedding)  # type: ignore[arg-type]
    after = letta.agents.retrieve(agent.id)
    assert after.llm_config.api_model_endpoint == agent.llm_config.api_model_endpoint
    assert after.embedding_config == agent.embedding_config
