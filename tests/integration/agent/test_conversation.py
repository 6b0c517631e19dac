"""A multi-step conversation through the API, on both provider wire protocols."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.integration.agent.conftest import create_agent, say, system_prompt
from tests.servers.script import call
from tests.servers.script import say as reply


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_block_edit_appears_in_next_prompt(provider: str, api: TestClient, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(f"{provider}_server")
    agent = create_agent(api, server)
    server.push(
        call(
            "core_memory_replace",
            label="human",
            old_content="has not told me their name",
            new_content="is called Ada",
            request_heartbeat=True,
        ),
        call("send_message", message="Nice to meet you, Ada!"),
        call("send_message", message="You are Ada."),
    )
    first = say(api, agent["id"], "Hi, I am Ada.")
    kinds = [m["message_type"] for m in first["messages"]]
    assert kinds == ["tool_call_message", "tool_return_message", "assistant_message"]
    assert first["messages"][1]["status"] == "success"
    assert first["messages"][2]["content"] == "Nice to meet you, Ada!"
    assert first["stop_reason"] == {"message_type": "stop_reason", "stop_reason": "end_turn"}
    assert first["usage"]["step_count"] == 2
    assert first["usage"]["total_tokens"] > 0

    # Request 1 saw the original block; request 2 (the step after the edit) saw the new value.
    assert "The user has not told me their name." in system_prompt(server.requests[0])
    assert "The user is called Ada." in system_prompt(server.requests[1])
    assert "has not told me" not in system_prompt(server.requests[1])

    second = say(api, agent["id"], "Who am I?")
    assert [m["message_type"] for m in second["messages"]] == ["assistant_message"]
    assert "The user is called Ada." in system_prompt(server.requests[2])
    # The whole history went along: the earlier user message is in the third request.
    assert "Hi, I am Ada." in json.dumps(server.requests[2]["messages"])

    block = api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()
    assert block["value"] == "The user is called Ada."


def test_reply_without_tool_call_ends_the_turn(api: TestClient, openai_server) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(reply("Just text."))
    out = say(api, agent["id"], "hello")
    assert [(m["message_type"], m.get("content")) for m in out["messages"]] == [("assistant_message", "Just text.")]
    assert out["stop_reason"]["stop_reason"] == "end_turn"
    assert out["usage"]["step_count"] == 1


def test_stream_tokens_from_anthropic(api: TestClient, anthropic_server) -> None:
    agent = create_agent(api, anthropic_server)
    anthropic_server.push(call("send_message", _text="Considering.", message="Bonjour, ça va?"))
    with api.stream(
        "POST",
        f"/v1/agents/{agent['id']}/messages/stream",
        json={"messages": [{"role": "user", "content": "salut"}], "stream_tokens": True},
    ) as response:
        assert response.status_code == 200
        items = [
            json.loads(line[6:])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    said = "".join(i["content"] for i in items if i["message_type"] == "assistant_message")
    thought = "".join(i["reasoning"] for i in items if i["message_type"] == "reasoning_message")
    assert (said, thought) == ("Bonjour, ça va?", "Considering.")
    assert items[-2] == {"message_type": "stop_reason", "stop_reason": "end_turn"}
    assert items[-1]["step_count"] == 1
    assert anthropic_server.requests[0].get("stream") is True
    # what was streamed is what was stored
    history = api.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc"}).json()
    assert [m.get("content") for m in history if m["message_type"] == "assistant_message"] == ["Bonjour, ça va?"]
