"""requires_approval: the run pauses, survives a restart, and resumes on approve or deny."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests import wiring
from tests.integration.agent.conftest import create_agent, make_engine, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

RULES = [{"type": "requires_approval", "tool_name": "core_memory_append"}]


def _pause(api: TestClient, server: OpenAIServer) -> tuple[dict, dict]:
    agent = create_agent(api, server, tool_rules=RULES)
    server.push(
        call("core_memory_append", _id="call_risky", label="human", content="Owns a boat.", request_heartbeat=True)
    )
    out = say(api, agent["id"], "I own a boat, remember it")
    return agent, out


def test_approve_after_a_restart(api: TestClient, openai_server: OpenAIServer, db) -> None:
    agent, out = _pause(api, openai_server)
    assert out["stop_reason"]["stop_reason"] == "requires_approval"
    [request] = out["messages"]
    assert request["message_type"] == "approval_request_message"
    assert request["tool_call"]["tool_call_id"] == "call_risky"
    runs = api.get("/v1/runs/", params={"agent_id": agent["id"]}).json()
    assert runs[0]["stop_reason"] == "requires_approval"

    # A new message while the call waits is refused.
    blocked = api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [{"role": "user", "content": "hi"}]})
    assert blocked.status_code == 409, blocked.text

    # "Restart": a new app and engine on the same database; nothing lives in memory.
    fresh = wiring.app(db, engine=make_engine(db))
    openai_server.push(call("send_message", message="I will remember your boat."))
    with TestClient(fresh, headers=dict(api.headers)) as client:
        resumed = client.post(
            f"/v1/agents/{agent['id']}/messages",
            json={
                "messages": [
                    {
                        "type": "approval",
                        "approvals": [{"type": "approval", "tool_call_id": "call_risky", "approve": True}],
                    }
                ]
            },
        )
        assert resumed.status_code == 200, resumed.text
        body = resumed.json()
        assert [m["message_type"] for m in body["messages"]] == ["tool_return_message", "assistant_message"]
        assert body["messages"][0]["status"] == "success"
        assert body["stop_reason"]["stop_reason"] == "end_turn"
        block = client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()
        assert block["value"].endswith("Owns a boat.")
        history = client.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc"}).json()
        assert "approval_response_message" in [m["message_type"] for m in history]
        # Approving twice is a conflict, not a second execution.
        again = client.post(
            f"/v1/agents/{agent['id']}/messages", json={"messages": [{"type": "approval", "approve": True}]}
        )
        assert again.status_code == 409


def test_deny_with_reason_legacy_form(api: TestClient, openai_server: OpenAIServer) -> None:
    agent, out = _pause(api, openai_server)
    openai_server.push(call("send_message", message="Understood, I will not store it."))
    resumed = api.post(
        f"/v1/agents/{agent['id']}/messages",
        json={
            "messages": [
                {
                    "type": "approval",
                    "approve": False,
                    "approval_request_id": out["messages"][0]["id"],
                    "reason": "not now",
                }
            ]
        },
    )
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    tool_return = body["messages"][0]
    assert tool_return["status"] == "error"
    assert "denied" in tool_return["tool_return"] and "not now" in tool_return["tool_return"]
    assert body["messages"][-1]["content"] == "Understood, I will not store it."
    block = api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()
    assert "boat" not in block["value"]
    # The model saw the denial as the tool's result.
    last = openai_server.requests[-1]["messages"][-1]
    assert last["role"] == "tool" and "not now" in last["content"]


@pytest.mark.parametrize(
    "approval",
    [
        {"type": "approval", "approvals": [{"type": "approval", "tool_call_id": "call_other", "approve": True}]},
        {"type": "approval"},
    ],
)
def test_bad_approvals_are_rejected(api: TestClient, openai_server: OpenAIServer, approval: dict) -> None:
    agent, _ = _pause(api, openai_server)
    response = api.post(f"/v1/agents/{agent['id']}/messages", json={"messages": [approval]})
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_cancel_a_paused_run(api: TestClient, openai_server: OpenAIServer) -> None:
    agent, _ = _pause(api, openai_server)
    cancelled = api.post(f"/v1/agents/{agent['id']}/messages/cancel", json={})
    assert cancelled.status_code == 200
    [(run_id, state)] = cancelled.json().items()
    assert state == "cancelled"
    run = api.get(f"/v1/runs/{run_id}").json()
    assert (run["status"], run["stop_reason"]) == ("cancelled", "cancelled")
    # The agent is free again, and its next prompt leaves the unanswered call out.
    openai_server.push(call("send_message", message="ok"))
    assert say(api, agent["id"], "never mind")["stop_reason"]["stop_reason"] == "end_turn"
    assert "call_risky" not in str(openai_server.requests[-1]["messages"])
