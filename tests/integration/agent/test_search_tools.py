"""archival_memory_insert/search and conversation_search through the loop, on the memory engine."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _returns(out: dict) -> list[dict]:
    return [m for m in out["messages"] if m["message_type"] == "tool_return_message"]


def test_archival_insert_then_search_and_recall(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call(
            "archival_memory_insert",
            content="The user's sister Maria lives in Lisbon and teaches piano.",
            tags=["family"],
            request_heartbeat=True,
        ),
        call("send_message", message="Stored."),
    )
    say(api, agent["id"], "My sister Maria lives in Lisbon and teaches piano.")
    openai_server.push(
        call("archival_memory_search", query="where does the sister live", tags=["family"], request_heartbeat=True),
        call("conversation_search", query="Maria piano", roles=["user"], request_heartbeat=True),
        call("send_message", message="Lisbon."),
    )
    out = say(api, agent["id"], "Where does my sister live?")
    archival, recall = _returns(out)
    assert archival["status"] == "success", archival["tool_return"]
    hits = json.loads(archival["tool_return"])
    assert hits[0]["content"].startswith("The user's sister Maria lives in Lisbon")
    assert hits[0]["tags"] == ["family"]
    assert recall["status"] == "success", recall["tool_return"]
    found = json.loads(recall["tool_return"])
    assert found[0]["role"] == "user" and "Maria lives in Lisbon" in found[0]["content"]
    # The prompt's memory metadata counts the archival passage once the prompt recompiles.
    prompt = api.post(f"/v1/agents/{agent['id']}/recompile").json()
    assert "1 total memories you created are stored in archival memory" in prompt


def test_search_errors_are_tool_results(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("conversation_search", query="   ", request_heartbeat=True),
        call("archival_memory_insert", content=""),
        call("send_message", message="ok"),
    )
    out = say(api, agent["id"], "search nothing")
    first, second = _returns(out)
    assert first["status"] == "error" and "query must not be empty" in first["tool_return"]
    assert second["status"] == "error" and "non-empty text" in second["tool_return"]
