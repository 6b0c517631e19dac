"""Driving a conversation past the context window: the oldest messages are summarised."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from o.agent.context import SUMMARY_SYSTEM
from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply


def _is_summary_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == SUMMARY_SYSTEM


def _respond(body: dict[str, Any]) -> Reply:
    if _is_summary_request(body):
        return Reply(text="SUMMARY: the user told long stories about rivers.")
    return Reply(text="Interesting.")


def _story(n: int) -> str:
    # about 300 tokens, unique per turn so each can be found
    return f"Story {n}: " + " ".join(f"river{n} bends near the old mill and the water runs fast" for _ in range(25))


def test_overflow_summarises_oldest_and_keeps_them_in_recall(api: TestClient, openai_server: OpenAIServer) -> None:
    openai_server.script.default = _respond
    agent = create_agent(api, openai_server, llm={"context_window": 4000})
    for n in range(12):
        say(api, agent["id"], _story(n))
    summary_calls = [b for b in openai_server.requests if _is_summary_request(b)]
    assert summary_calls, "the conversation never passed the threshold"
    # The summariser was given the evicted messages, starting with the first story.
    assert "Story 0:" in summary_calls[0]["messages"][1]["content"]

    last = openai_server.requests[-1]
    sent = json.dumps(last["messages"])
    assert last["messages"][0]["role"] == "system" and "<memory_blocks>" in last["messages"][0]["content"]
    assert "SUMMARY: the user told long stories about rivers." in sent
    assert "Story 0:" not in sent
    assert "Story 11:" in last["messages"][-1]["content"]  # the newest user message is kept
    # every request after a summary stayed below the window (checked with the server's own estimate)
    assert all(len(json.dumps(b["messages"])) // 4 < 4000 for b in openai_server.requests)

    # Nothing was lost: all stories remain in the history (recall), the evicted ones out of context.
    history = api.get(f"/v1/agents/{agent['id']}/messages", params={"limit": 1000, "order": "asc"}).json()
    users = [m["content"] for m in history if m["message_type"] == "user_message"]
    assert [u.split(":")[0] for u in users] == [f"Story {n}" for n in range(12)]
    assert any(m["message_type"] == "system_message" and "SUMMARY" in m["content"] for m in history)

    db = api.app.state.db
    with db.transaction() as conn:
        rows = conn.execute(
            "SELECT role, in_context, text FROM messages WHERE agent_id = %s ORDER BY seq", (agent["id"],)
        ).fetchall()
    assert not rows[0]["in_context"]
    assert rows[-2]["in_context"] and rows[-2]["text"].startswith("Story 11")
    assert sum(1 for r in rows if r["role"] == "system" and r["in_context"]) == 1


def test_provider_overflow_error_summarises_and_retries(api: TestClient, openai_server: OpenAIServer) -> None:
    from tests.servers.script import fail

    agent = create_agent(api, openai_server)
    openai_server.push(Reply(text="first answer"))
    say(api, agent["id"], _story(1))
    openai_server.push(
        fail(400, "This model's maximum context length is 128000 tokens. Please reduce the length of the messages."),
        Reply(text="SUMMARY: a story about river1."),
        Reply(text="second answer"),
    )
    out = say(api, agent["id"], _story(2))
    assert out["messages"][-1]["content"] == "second answer"
    assert _is_summary_request(openai_server.requests[2])
    retried = json.dumps(openai_server.requests[3]["messages"])
    assert "SUMMARY: a story about river1." in retried and "Story 1:" not in retried and "Story 2:" in retried


def test_prompt_larger_than_the_window_is_a_named_error(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server, llm={"context_window": 300})
    response = api.post(f"/v1/agents/{agent['id']}/messages", json={"input": "hi"})
    assert response.status_code == 422, response.text
    assert "context window" in response.json()["detail"]
    assert response.json()["context"]["stop_reason"] == "context_window_overflow_in_system_prompt"
    assert openai_server.requests == []
