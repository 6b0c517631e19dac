"""The runs API and cancelling a run whose LLM call is in flight."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from o.agent import runs as run_api
from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, call


def test_run_views(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    openai_server.push(
        call("conversation_search", query="x", request_heartbeat=True),
        call("send_message", message="hi"),
    )
    out = say(api, agent["id"], "hello", include_return_message_types=["assistant_message"])
    assert [m["message_type"] for m in out["messages"]] == ["assistant_message"]
    [run_id] = out["usage"]["run_ids"]
    run = api.get(f"/v1/runs/{run_id}").json()
    assert run["agent_id"] == agent["id"] and run["status"] == "completed"
    assert run["request_config"]["include_return_message_types"] == ["assistant_message"]
    assert run["total_duration_ns"] > 0
    steps = api.get(f"/v1/runs/{run_id}/steps").json()
    assert [s["step_index"] for s in steps] == [0, 1]
    assert all(s["total_tokens"] > 0 and s["status"] == "success" for s in steps)
    usage = api.get(f"/v1/runs/{run_id}/usage").json()
    assert usage["step_count"] == 2
    assert usage["total_tokens"] == sum(s["total_tokens"] for s in steps)
    messages = api.get(f"/v1/runs/{run_id}/messages").json()
    assert [m["message_type"] for m in messages] == [
        "user_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert api.get("/v1/runs/", params={"agent_id": agent["id"], "statuses": ["failed"]}).json() == []
    assert api.get("/v1/runs/", params={"agent_id": agent["id"], "active": True}).json() == []
    missing = api.get("/v1/runs/run-00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]


def test_runs_are_private_to_their_organization(api: TestClient, openai_server: OpenAIServer, agent_app, db) -> None:
    from tests.integration.conftest import new_org_key

    agent = create_agent(api, openai_server)
    openai_server.push(call("send_message", message="hi"))
    [run_id] = say(api, agent["id"], "hello")["usage"]["run_ids"]
    with TestClient(agent_app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as other:
        assert other.get(f"/v1/runs/{run_id}").status_code == 404
        assert other.get("/v1/runs/").json() == []
        assert (
            other.post(
                f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "x"}]}
            ).status_code
            == 404
        )


def test_cancel_while_the_llm_is_thinking(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    db = api.app.state.db

    def cancel_then_answer(body: dict[str, Any]) -> Reply:
        with db.transaction() as conn:
            org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()
            touched = run_api.cancel(conn, org["organization_id"], agent["id"], None)
        assert len(touched) == 1
        return Reply(tool_calls=(ScriptedCall("core_memory_append", {"label": "human", "content": "never"}),))

    openai_server.push(cancel_then_answer)
    out = say(api, agent["id"], "hello")
    assert out["stop_reason"]["stop_reason"] == "cancelled"
    assert out["messages"] == []
    run = api.get(f"/v1/runs/{out['usage']['run_ids'][0]}").json()
    assert run["status"] == "cancelled"
    assert "never" not in api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"]


def test_bad_requests_name_the_problem(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    url = f"/v1/agents/{agent['id']}/messages"
    cases = [
        ({"messages": []}, "at least one message"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user"}]}, "content is required"),
        ({"messages": [{"role": "user", "content": [{"type": "image", "url": "x"}]}]}, "text content"),
        ({"messages": [{"type": "weird"}]}, "not supported"),
        ({"messages": [{"role": "user", "content": "x"}], "max_steps": 0}, "max_steps"),
    ]
    for body, needle in cases:
        response = api.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert needle in response.text, (needle, response.text)
    assert (
        api.post("/v1/agents/agent-00000000-0000-0000-0000-000000000000/messages", json={"input": "hi"}).status_code
        == 404
    )
    # Letta's short form: "input" is one user message
    openai_server.push(call("send_message", message="via input"))
    r = api.post(url, json={"input": "short form"})
    assert r.status_code == 200
    assert r.json()["messages"][-1]["content"] == "via input"
    assert openai_server.requests[-1]["messages"][-1] == {"role": "user", "content": "short form"}


def test_stream_reports_a_failed_run(api: TestClient, openai_server: OpenAIServer) -> None:
    import json

    from tests.servers.script import fail

    agent = create_agent(api, openai_server)
    openai_server.push(fail(401, "invalid key"))
    with api.stream("POST", f"/v1/agents/{agent['id']}/messages/stream", json={"input": "hi"}) as response:
        items = [
            json.loads(line[6:])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]
    # the provider, the status and its error type; never what the endpoint answered
    assert items[0]["message_type"] == "error_message"
    assert "openai returned HTTP 401 (authentication_error)" in items[0]["message"]
    assert "invalid key" not in items[0]["message"]
    assert items[1] == {"message_type": "stop_reason", "stop_reason": "llm_api_error"}


def test_an_unexpected_error_fails_the_run_with_a_named_error(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    engine = api.app.state.services.engine

    def broken(config: Any) -> Any:
        raise RuntimeError("factory exploded")

    engine.llm = broken
    response = api.post(f"/v1/agents/{agent['id']}/messages", json={"input": "hi"})
    assert response.status_code == 500, response.text
    body = response.json()
    assert body["code"] == "run_failed" and "RuntimeError: factory exploded" in body["detail"]
    run = api.get(f"/v1/runs/{body['context']['run_id']}").json()
    assert (run["status"], run["stop_reason"]) == ("failed", "error")
