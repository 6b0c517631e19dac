"""The context-window endpoints: reset-messages, summarize (the SDK's messages.compact) and the overview."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from letta_client import Letta

from o.agent.context import SUMMARY_SYSTEM
from o.agent.overview import BOOT_MESSAGE
from o.llm import tokens
from o.store.db import Database
from o.store.messages import in_context
from tests.integration.agent.conftest import create_agent, say, system_prompt
from tests.integration.agent.test_letta_client import base_url, letta  # noqa: F401
from tests.integration.conftest import new_org_key
from tests.servers.anthropic_server import AnthropicServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, call


def _is_summary_request(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"] == SUMMARY_SYSTEM


def _chat(api: TestClient, server: OpenAIServer, agent_id: str, *turns: str) -> None:
    for n, text in enumerate(turns):
        server.push(Reply(text=f"answer {n}"))
        say(api, agent_id, text)


def _in_context(db: Database, agent_id: str) -> list[dict[str, Any]]:
    with db.transaction() as conn:
        return in_context(conn, agent_id)


def test_reset_takes_messages_out_of_context_but_keeps_them_in_recall(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    _chat(api, openai_server, agent["id"], "My favourite fruit is the kiwi.", "I live in Lisbon.")

    response = api.patch(f"/v1/agents/{agent['id']}/reset-messages", json={"add_default_initial_messages": False})
    assert response.status_code == 200, response.text
    state = response.json()
    assert state["id"] == agent["id"] and {b["label"] for b in state["blocks"]} == {"persona", "human"}

    view = api.get(f"/v1/agents/{agent['id']}/context").json()
    assert view["num_messages"] == 1 and view["messages"] == [] and view["num_tokens_messages"] == 0
    # nothing deleted: the history (recall) still has every message
    history = api.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc"}).json()
    assert [m["content"] for m in history if m["message_type"] == "user_message"] == [
        "My favourite fruit is the kiwi.",
        "I live in Lisbon.",
    ]
    assert view["num_recall_memory"] == 4

    # The next step sees only the system prompt and the new message; the old ones are still searchable.
    openai_server.push(
        call("conversation_search", query="kiwi", request_heartbeat=True),
        call("send_message", message="You like kiwis."),
    )
    say(api, agent["id"], "What fruit do I like?")
    first = openai_server.requests[-2]["messages"]
    assert [m["role"] for m in first] == ["system", "user"]
    assert "kiwi" not in json.dumps(first[1:]).replace("What fruit", "")
    # the system prompt is kept, recompiled: it counts the 4 old messages and the new one
    assert "5 previous messages" in first[0]["content"]
    found = next(m for m in openai_server.requests[-1]["messages"] if m["role"] == "tool")
    assert "My favourite fruit is the kiwi." in found["content"]


def test_reset_with_default_initial_messages_starts_from_the_boot_sequence(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    _chat(api, openai_server, agent["id"], "Remember the number 42.")
    response = api.patch(f"/v1/agents/{agent['id']}/reset-messages", json={"add_default_initial_messages": True})
    assert response.status_code == 200, response.text

    rows = _in_context(api.app.state.db, agent["id"])
    assert [r["role"] for r in rows] == ["assistant", "tool", "user"]
    assert json.loads(rows[2]["text"])["type"] == "login"

    openai_server.push(Reply(text="hello"))
    say(api, agent["id"], "hi")
    sent = openai_server.requests[-1]["messages"]
    assert [m["role"] for m in sent] == ["system", "assistant", "tool", "user", "user"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"message": BOOT_MESSAGE}
    # the old conversation is out of the context: nothing but random ids and the boot sequence's clock
    # (which may hold the digits by chance) carries a 42
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", json.dumps(sent[1:]))
    text = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "<time>", text)
    assert "42" not in text
    # no body at all is Letta's default: no boot messages
    assert api.patch(f"/v1/agents/{agent['id']}/reset-messages").status_code == 200
    assert _in_context(api.app.state.db, agent["id"]) == []


def test_summarize_evicts_the_oldest_turns_into_a_summary(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    _chat(api, openai_server, agent["id"], "Turn one about apples.", "Turn two about pears.", "Turn three, plums.")
    openai_server.push(Reply(text="SUMMARY: the user talked about apples."))

    response = api.post(f"/v1/agents/{agent['id']}/summarize", json={})
    assert response.status_code == 200, response.text
    body = response.json()
    # far below the window, a forced summary evicts the oldest turn (user + reply) only
    assert body == {
        "num_messages_before": 7,
        "num_messages_after": 6,
        "summary": "SUMMARY: the user talked about apples.",
    }
    summarized = openai_server.requests[-1]
    assert _is_summary_request(summarized)
    assert "Turn one about apples." in summarized["messages"][1]["content"]
    assert "pears" not in summarized["messages"][1]["content"]

    view = api.get(f"/v1/agents/{agent['id']}/context").json()
    assert "SUMMARY: the user talked about apples." in view["summary_memory"]
    assert view["num_tokens_summary_memory"] == tokens.count_text(view["summary_memory"])
    assert view["num_messages"] == 6 and view["messages"][0]["role"] == "system"

    # mode "all" keeps only the newest user turn; the earlier summary is folded into the new one
    openai_server.push(Reply(text="SUMMARY: apples, pears and plums."))
    response = api.post(f"/v1/agents/{agent['id']}/summarize", json={"compaction_settings": {"mode": "all"}})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "num_messages_before": 6,
        "num_messages_after": 4,
        "summary": "SUMMARY: apples, pears and plums.",
    }
    assert "SUMMARY: the user talked about apples." in openai_server.requests[-1]["messages"][1]["content"]
    rows = _in_context(api.app.state.db, agent["id"])
    assert [r["role"] for r in rows] == ["system", "user", "assistant"]
    assert rows[1]["text"] == "Turn three, plums."

    openai_server.push(Reply(text="ok"))
    say(api, agent["id"], "next")
    sent = json.dumps(openai_server.requests[-1]["messages"])
    assert "SUMMARY: apples, pears and plums." in sent and "Turn two" not in sent
    # every message is still in the history
    history = api.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc", "limit": 100}).json()
    assert [m["content"] for m in history if m["message_type"] == "user_message"][:3] == [
        "Turn one about apples.",
        "Turn two about pears.",
        "Turn three, plums.",
    ]


def test_summarize_through_anthropic_and_with_nothing_to_summarize(
    api: TestClient, anthropic_server: AnthropicServer
) -> None:
    agent = create_agent(api, anthropic_server)
    anthropic_server.push(Reply(text="first"))
    say(api, agent["id"], "only one turn")
    response = api.post(f"/v1/agents/{agent['id']}/summarize")
    assert response.status_code == 409, response.text
    assert "nothing to summarise" in response.json()["detail"]
    assert len(anthropic_server.requests) == 1  # no summary call was made

    anthropic_server.push(Reply(text="second"), Reply(text="SUMMARY via claude"))
    say(api, agent["id"], "another turn")
    response = api.post(
        f"/v1/agents/{agent['id']}/summarize",
        json={
            "compaction_settings": {
                "mode": "sliding_window",
                "sliding_window_percentage": 0.3,
                "model": "ignored/model",
            }
        },
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"] == "SUMMARY via claude"
    assert "only one turn" in json.dumps(anthropic_server.requests[-1]["messages"])


def test_summarize_reports_a_failing_provider(api: TestClient, openai_server: OpenAIServer) -> None:
    from tests.servers.script import fail

    agent = create_agent(api, openai_server)
    _chat(api, openai_server, agent["id"], "one", "two")
    openai_server.push(fail(401, "bad key"))
    response = api.post(f"/v1/agents/{agent['id']}/summarize")
    assert response.status_code == 502, response.text
    assert response.json()["code"] == "llm_error"
    assert len(_in_context(api.app.state.db, agent["id"])) == 4  # nothing evicted


def test_context_overview_matches_what_the_model_is_sent(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(
        api,
        openai_server,
        llm={"context_window": 16000},
        tool_rules=[{"type": "exit_loop", "tool_name": "send_message"}],
    )
    _chat(api, openai_server, agent["id"], "Hello there, I am Ada.")
    view = api.get(f"/v1/agents/{agent['id']}/context").json()

    assert view["context_window_size_max"] == 16000
    assert view["num_messages"] == 3 and [m["role"] for m in view["messages"]] == ["user", "assistant"]
    assert view["messages"][0]["content"] == [{"type": "text", "text": "Hello there, I am Ada."}]
    assert view["num_recall_memory"] == 2 and view["num_archival_memory"] == 0
    assert "I am a careful assistant." in view["core_memory"] and "<memory_blocks>" in view["core_memory"]
    assert "<memory_metadata>" in view["external_memory_summary"]
    assert "send_message ends your turn" in view["tool_usage_rules"]
    assert view["summary_memory"] is None and view["num_tokens_summary_memory"] == 0
    names = {f["function"]["name"] for f in view["functions_definitions"]}
    assert {"send_message", "conversation_search", "archival_memory_search"} <= names

    # the same system prompt and tools the next LLM request carries
    openai_server.push(Reply(text="hi Ada"))
    say(api, agent["id"], "again")
    sent = openai_server.requests[-1]
    compiled = system_prompt(sent)
    # identical but for the recall count (the loop's prompt cache keeps the count of its first compile)
    assert re.sub(r"\d+ previous", "N previous", view["system_prompt"]) == re.sub(
        r"\d+ previous", "N previous", compiled
    )
    assert {t["function"]["name"] for t in sent["tools"]} == names

    for key, text in [
        ("num_tokens_core_memory", view["core_memory"]),
        ("num_tokens_external_memory_summary", view["external_memory_summary"]),
        ("num_tokens_tool_usage_rules", view["tool_usage_rules"]),
    ]:
        assert view[key] == tokens.count_text(text) > 0, key
    assert 0 < view["num_tokens_system"] < view["num_tokens_core_memory"] + view["num_tokens_system"]
    parts = sum(
        view[k]
        for k in (
            "num_tokens_system",
            "num_tokens_core_memory",
            "num_tokens_external_memory_summary",
            "num_tokens_tool_usage_rules",
            "num_tokens_summary_memory",
            "num_tokens_functions_definitions",
            "num_tokens_messages",
        )
    )
    # the current size adds chat framing to the parts, and stays near them
    assert parts <= view["context_window_size_current"] <= parts + 40
    assert view["num_tokens_messages"] > tokens.count_text("Hello there, I am Ada.answer 0")


def test_another_organizations_agent_is_not_found(
    agent_app: FastAPI, api: TestClient, db: Database, openai_server: OpenAIServer
) -> None:
    agent = create_agent(api, openai_server)
    _chat(api, openai_server, agent["id"], "secret")
    with TestClient(agent_app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        for method, path in [("PATCH", "reset-messages"), ("POST", "summarize"), ("GET", "context")]:
            response = other.request(method, f"/v1/agents/{agent['id']}/{path}")
            assert response.status_code == 404, (path, response.text)
            assert agent["id"] in response.json()["detail"]
    assert len(_in_context(db, agent["id"])) == 2
    assert len(openai_server.requests) == 1


def test_through_the_letta_sdk(letta: Letta, openai_server: OpenAIServer) -> None:  # noqa: F811
    agent = letta.agents.create(
        name="sdk-context",
        llm_config={
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": openai_server.base_url,
            "context_window": 128000,
        },
        memory_blocks=[{"label": "human", "value": "Unknown user.", "limit": 1000}],
    )
    for n in range(3):
        openai_server.push(Reply(text=f"reply {n}"))
        letta.agents.messages.create(agent.id, messages=[{"role": "user", "content": f"message {n}"}])

    openai_server.push(Reply(text="SUMMARY: message 0 was sent."))
    compacted = letta.agents.messages.compact(agent.id, compaction_settings={"mode": "sliding_window"})
    assert (compacted.num_messages_before, compacted.num_messages_after) == (7, 6)
    assert compacted.summary == "SUMMARY: message 0 was sent."

    view = letta.get(f"/v1/agents/{agent.id}/context", cast_to=object)
    assert isinstance(view, dict) and view["num_messages"] == 6
    assert "SUMMARY: message 0 was sent." in view["summary_memory"]

    state = letta.agents.messages.reset(agent.id, add_default_initial_messages=False)
    assert state is not None and state.id == agent.id and state.memory.blocks[0].value == "Unknown user."
    assert letta.get(f"/v1/agents/{agent.id}/context", cast_to=object)["num_messages"] == 1
    listed = letta.agents.messages.list(agent.id, limit=100)
    assert sum(1 for m in listed.items if m.message_type == "user_message") == 3
