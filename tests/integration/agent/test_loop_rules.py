"""Tool rules, tool errors and max_steps as the loop enforces them, seen from the LLM's side."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


def _offered(body: dict) -> list[str]:
    return [t["function"]["name"] for t in body.get("tools") or []]


def test_init_child_and_terminal_rules(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(
        api,
        openai_server,
        tool_rules=[
            {"type": "run_first", "tool_name": "conversation_search"},
            {"type": "constrain_child_tools", "tool_name": "memory_insert", "children": ["send_message"]},
            {"type": "exit_loop", "tool_name": "send_message"},
        ],
    )
    openai_server.push(
        # breaks the init rule: the model is told so and the loop goes on
        call("memory_insert", label="human", new_str="x"),
        call("conversation_search", query="short", request_heartbeat=True),
        call("memory_insert", label="human", new_str="Prefers short answers."),
        call("send_message", message="Done.", request_heartbeat=True),
    )
    out = say(api, agent["id"], "remember: short answers")
    first, second, third, fourth = openai_server.requests
    assert _offered(first) == ["conversation_search"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "conversation_search"}}
    returns = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert returns[0]["status"] == "error" and "ToolConstraintError" in returns[0]["tool_return"]
    # a rejected call does not count as made (as in Letta): the init rule still applies
    assert _offered(second) == ["conversation_search"]
    assert "memory_insert" in _offered(third)
    # the child rule pins the next call and keeps the loop going without a heartbeat
    assert _offered(fourth) == ["send_message"]
    # send_message is terminal even though it asked for a heartbeat
    assert out["stop_reason"]["stop_reason"] == "tool_rule"
    block = api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()
    assert block["value"].endswith("Prefers short answers.") and "\nx" not in block["value"]


def test_tool_errors_return_to_the_model_and_the_run_goes_on(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("core_memory_replace", label="human", old_content="not there", new_content="y"),
        call("memory_replace", label="nope", old_str="a", new_str="b"),
        call("core_memory_append", label="human", content="z" * 5000),
        call("memory_insert", label="human", new_str="q", insert_line=99),
        call("no_such_tool"),
        call("send_message", _text="thinking", message="bad args", extra=1),
        call("send_message", message="Sorry, all good now."),
    )
    out = say(api, agent["id"], "go")
    returns = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert [r["status"] for r in returns] == ["error"] * 6
    texts = [r["tool_return"] for r in returns]
    assert "not found in memory block 'human'" in texts[0]
    assert "no memory block labelled 'nope'" in texts[1]
    assert "limit" in texts[2]
    assert "insert_line" in texts[3]
    assert "does not exist" in texts[4]
    assert "unexpected arguments" in texts[5]
    assert out["messages"][-1]["content"] == "Sorry, all good now."
    assert out["stop_reason"]["stop_reason"] == "end_turn"
    # a failed edit changed nothing
    block = api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()
    assert block["value"] == "The user has not told me their name."


def test_memory_tools_edit_blocks(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("memory_insert", label="persona", new_str="Line zero.", insert_line=0, request_heartbeat=True),
        call("memory_replace", label="persona", old_str="careful", new_str="cheerful", request_heartbeat=True),
        call("memory_rethink", label="human", new_memory="Name: Bo.\nLikes: jazz.", request_heartbeat=True),
        call("core_memory_append", label="human", content="Plays sax.", request_heartbeat=True),
        call("send_message", message="ok"),
    )
    say(api, agent["id"], "go")
    blocks = {b["label"]: b["value"] for b in api.get(f"/v1/agents/{agent['id']}/core-memory/blocks").json()}
    assert blocks["persona"] == "Line zero.\nI am a cheerful assistant."
    assert blocks["human"] == "Name: Bo.\nLikes: jazz.\nPlays sax."


def test_max_steps(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(*[call("conversation_search", query="x", request_heartbeat=True) for _ in range(2)])
    out = say(api, agent["id"], "loop", max_steps=2)
    assert out["stop_reason"]["stop_reason"] == "max_steps"
    assert out["usage"]["step_count"] == 2
    assert len(openai_server.requests) == 2


def test_llm_failure_fails_the_run_with_a_reason(api: TestClient, openai_server: OpenAIServer) -> None:
    from tests.servers.script import fail

    agent = create_agent(api, openai_server)
    openai_server.push(fail(400, "bad request from the model"))
    response = api.post(f"/v1/agents/{agent['id']}/messages", json={"input": "hi"})
    assert response.status_code == 502, response.text
    body = response.json()
    # the reason names the provider, the status and its error type, and never repeats the endpoint's answer
    reason = "openai returned HTTP 400 (invalid_request_error)"
    assert body["code"] == "run_failed" and reason in body["detail"]
    assert "bad request from the model" not in response.text
    assert body["context"]["stop_reason"] == "llm_api_error"
    run = api.get(f"/v1/runs/{body['context']['run_id']}").json()
    assert (run["status"], run["stop_reason"]) == ("failed", "llm_api_error")
    assert reason in run["error"] and "bad request" not in run["error"]
    # the user's message is kept; the agent works again once the provider does
    openai_server.push(call("send_message", message="back"))
    assert say(api, agent["id"], "again")["messages"][-1]["content"] == "back"


def test_missing_api_key_is_named(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server, llm={"model_endpoint_type": "groq", "model": "llama"})
    engine = api.app.state.services.engine
    from o.agent.engine import llm_factory
    from o.llm.keys import StaticKeySource
    from tests.servers.fixtures import FAST_OPTIONS, operator_at

    # the server is the operator's Groq endpoint, whose key the operator has not set
    engine.llm = llm_factory(StaticKeySource({}), operator_at(FAST_OPTIONS, groq=openai_server.base_url))
    response = api.post(f"/v1/agents/{agent['id']}/messages", json={"input": "hi"})
    assert response.status_code == 502, response.text
    assert "GROQ_API_KEY" in response.json()["detail"]


def test_heartbeat_flag_given_as_text(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("conversation_search", query="a", request_heartbeat="true"),
        call("core_memory_append", label="human", content="x", request_heartbeat="false"),
    )
    out = say(api, agent["id"], "go")
    assert out["usage"]["step_count"] == 2  # "true" continued, "false" ended the turn
    assert out["stop_reason"]["stop_reason"] == "end_turn"


def test_conditional_rule_routes_and_an_unmapped_output_stops(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(
        api,
        openai_server,
        tool_rules=[
            {
                "type": "conditional",
                "tool_name": "memory_replace",
                "require_output_mapping": True,
                "child_output_mapping": {"The core memory block with label `human` has been edited.": "send_message"},
            }
        ],
    )
    openai_server.push(
        call("memory_replace", label="human", old_str="has not told me their name", new_str="is Ann"),
        call("send_message", message="Hi Ann"),
    )
    out = say(api, agent["id"], "I'm Ann")
    assert [t["function"]["name"] for t in openai_server.requests[1]["tools"]] == ["send_message"]
    assert out["messages"][-1]["content"] == "Hi Ann"

    openai_server.push(call("memory_replace", label="persona", old_str="careful", new_str="calm"))
    out = say(api, agent["id"], "be calm")
    assert out["stop_reason"]["stop_reason"] == "invalid_tool_call"
