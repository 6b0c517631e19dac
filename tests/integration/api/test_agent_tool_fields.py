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
            "tool_exec_environment_variables": {"API_TOKEN": "tok-plaintext-1"},
            "secrets": {"OTHER": "other-plaintext-2"},
        },
    )
    assert agent.status_code == 200, agent.text
    body = agent.json()
    # the base tools are records too: the agent has its type's nine (send_message among them) and shout
    # (the outside-world built-ins, letta_builtin, are listed but given only when named)
    letta = client.get("/v1/tools/", params={"return_only_letta_tools": True}).json()
    base = {t["name"]: t["id"] for t in letta if t["tool_type"] != "letta_builtin"}
    assert sorted(body["tool_ids"]) == sorted([tool["id"], *base.values()])
    only = client.post("/v1/agents/", json={"tools": ["shout", "send_message"], "include_base_tools": False}).json()
    assert sorted(only["tool_ids"]) == sorted([tool["id"], base["send_message"]])
    variables = {v["key"]: v["value"] for v in body["tool_exec_environment_variables"]}
    # both of Letta's names set them; every response masks them
    assert variables == {"API_TOKEN": "********", "OTHER": "********"}
    assert "tok-plaintext-1" not in agent.text and "other-plaintext-2" not in agent.text

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
