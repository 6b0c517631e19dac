"""The README's flow against a real `o serve`: a key, an agent with two blocks, an edit — over HTTP."""

from __future__ import annotations

import httpx
from letta_client import Letta

from tests.e2e.conftest import Server


def test_readme_flow_over_http(server: Server) -> None:
    key = server.new_key()
    assert key.startswith("sk-o-")
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        r = http.post(
            "/v1/agents/",
            json={
                "name": "demo",
                "memory_blocks": [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "I am O."}],
            },
        )
        assert r.status_code == 200, r.text
        agent = r.json()
        r = http.patch(f"/v1/agents/{agent['id']}/core-memory/blocks/human", json={"value": "Name: Ada Lovelace"})
        assert r.status_code == 200 and r.json()["value"] == "Name: Ada Lovelace"
        assert http.get(f"/v1/agents/{agent['id']}").json()["memory"]["blocks"][0]["value"] == "Name: Ada Lovelace"
        assert http.get("/v1/agents/", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_letta_client_sdk_works_against_o(server: Server) -> None:
    client = Letta(base_url=server.url, api_key=server.new_key("sdk-org"))
    agent = client.agents.create(
        name="sdk-agent",
        model="ollama/llama3.2",  # this server has no provider keys; Ollama needs none to be named
        memory_blocks=[{"label": "human", "value": "Name: Grace"}, {"label": "persona", "value": "Helpful."}],
    )
    assert agent.id.startswith("agent-")
    assert [b.label for b in agent.memory.blocks] == ["human", "persona"]
    block = client.agents.blocks.retrieve("human", agent_id=agent.id)
    assert block.value == "Name: Grace"
    updated = client.agents.blocks.update("human", agent_id=agent.id, value="Name: Grace Hopper")
    assert updated.value == "Name: Grace Hopper"
    shared = client.blocks.create(label="team", value="Navy")
    client.agents.blocks.attach(shared.id, agent_id=agent.id)
    labels = [b.label for b in client.agents.blocks.list(agent_id=agent.id)]
    assert labels == ["human", "persona", "team"]
    assert agent.id in [a.id for a in client.agents.list()]
    assert list(client.agents.messages.list(agent_id=agent.id)) == []
    client.agents.delete(agent.id)
