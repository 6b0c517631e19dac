"""Letta's tool fields on agent create/update: tool_ids, tools (names), tool variables."""

from __future__ import annotations

from fastapi.testclient import TestClient

SOURCE = '''
def shout(text: str) -> str:
    """Upper-case a text.

    Args:
        text: what to shout
    """
    return text.upper()
'''


def test_create_with_tools_and_variables_then_update(client: TestClient) -> None:
    tool = client.post("/v1/tools/", json={"source_code": SOURCE}).json()
    agent = client.post(
        "/v1/agents/",
        json={
            "tools": ["shout", "send_message"],
            "tool_exec_environment_variables": {"API_TOKEN": "TOKEN-SECRET-1"},
            "secrets": {"OTHER": "OTHER-SECRET-2"},
        },
    )
    assert agent.status_code == 200, agent.text
    body = agent.json()
    assert body["tool_ids"] == [tool["id"]]
    variables = {v["key"]: v["value"] for v in body["tool_exec_environment_variables"]}
    # both of Letta's names set them; every response masks them
    assert variables == {"API_TOKEN": "********", "OTHER": "********"}
    assert "TOKEN-SECRET-1" not in agent.text and "OTHER-SECRET-2" not in agent.text

    updated = client.patch(f"/v1/agents/{body['id']}", json={"tool_ids": [], "secrets": {"ONLY": "x"}}).json()
    assert updated["tool_ids"] == []
    assert [v["key"] for v in updated["secrets"]] == ["ONLY"]
    again = client.patch(f"/v1/agents/{body['id']}", json={"tool_ids": [tool["id"]]}).json()
    assert again["tool_ids"] == [tool["id"]]


def test_unknown_tool_name_writes_nothing(client: TestClient) -> None:
    before = len(client.get("/v1/agents/").json())
    r = client.post("/v1/agents/", json={"name": "x", "tools": ["no_such_tool"]})
    assert r.status_code == 404 and "no_such_tool" in r.json()["detail"]
    assert len(client.get("/v1/agents/").json()) == before
