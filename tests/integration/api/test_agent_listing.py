"""A list of agents shows each agent exactly as GET agent does: its tools (read once per list, shared
by the agents that have them), blocks, variables and identities."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_each_listed_agent_is_the_agent_get_shows(client: TestClient) -> None:
    blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "O"}]
    ids = [
        client.post("/v1/agents/", json={"name": f"listed-{i}", "memory_blocks": blocks[: i + 1]}).json()["id"]
        for i in range(2)
    ]
    # the second agent loses one of the base tools it was given: the agents' tool sets differ
    dropped = client.get(f"/v1/agents/{ids[1]}").json()["tools"][0]["id"]
    assert client.patch(f"/v1/agents/{ids[1]}/tools/detach/{dropped}").status_code == 200
    page = client.get("/v1/agents/?limit=50")
    listed = {agent["id"]: agent for agent in page.json()}
    # byte for byte: the list splices each tool's JSON in once (o.api.responses.spliced_json)
    shown_bytes = [client.get(f"/v1/agents/{agent_id}").content for agent_id in listed]
    assert page.content == b"[" + b",".join(shown_bytes) + b"]"
    assert set(ids) <= set(listed)
    for agent_id in ids:
        shown = client.get(f"/v1/agents/{agent_id}").json()
        assert listed[agent_id] == shown
    assert dropped not in listed[ids[1]]["tool_ids"] and dropped in listed[ids[0]]["tool_ids"]
    assert listed[ids[0]]["tools"] and len(listed[ids[1]]["tools"]) == len(listed[ids[0]]["tools"]) - 1
