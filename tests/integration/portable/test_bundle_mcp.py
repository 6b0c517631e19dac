"""An agent's MCP tools in its bundle: a server's address and secrets never travel, so an MCP tool is
attached where the importing organization has a tool of its name (its server registered there) and
otherwise left out, named in ``skipped_tools``; the rest of the agent imports as usual."""

from __future__ import annotations

from fastapi.testclient import TestClient

from o.agent.portable import frames
from o.ids import new_id
from o.store import tools as tool_store
from o.store.db import Database

MSGPACK = {"content-type": frames.MEDIA_TYPE}


def _agent_with_an_mcp_tool(client: TestClient, db: Database) -> str:
    agent = client.post("/v1/agents/", json={"name": "weather", "model": "openai/gpt-4o-mini"}).json()["id"]
    with db.transaction() as conn:
        org = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent,)).fetchone()
        assert org is not None
        tool = tool_store.insert(
            conn,
            {
                "id": new_id("tool"),
                "organization_id": org["organization_id"],
                "name": "forecast",
                "description": "the weather",
                "tool_type": "external_mcp",
                "source_type": "mcp",
                "source_code": None,
                "json_schema": {"name": "forecast", "parameters": {"type": "object", "properties": {}}},
                "tags": ["mcp:weather"],
                "metadata": {"mcp": {"server_id": "mcp_server-elsewhere", "server_name": "weather"}},
            },
        )
        tool_store.attach(conn, agent, tool["id"])
    return agent


def test_an_mcp_tool_without_its_server_is_skipped_and_named(
    source: TestClient, target: TestClient, db: Database
) -> None:
    agent = _agent_with_an_mcp_tool(source, db)
    assert "forecast" in [t["name"] for t in source.get(f"/v1/agents/{agent}").json()["tools"]]
    exported = source.get(f"/v1/agents/{agent}/bundle").content

    imported = target.post("/v1/agents/import-bundle", content=exported, headers=MSGPACK)
    assert imported.status_code == 200, imported.text
    assert imported.json()["skipped_tools"] == ["forecast"]
    moved = target.get(f"/v1/agents/{imported.json()['agent_id']}").json()
    names = [t["name"] for t in moved["tools"]]
    assert "forecast" not in names and "send_message" in names  # the rest of its tools came along
    assert "forecast" not in [t["name"] for t in target.get("/v1/tools/", params={"limit": 1000}).json()]

    # where the organization has the server's tool, it is attached again
    again = source.post("/v1/agents/import-bundle", content=exported, headers=MSGPACK)
    assert again.status_code == 200, again.text
    assert again.json()["skipped_tools"] == [] and "forecast" in again.json()["reused_tools"]
    copy = source.get(f"/v1/agents/{again.json()['agent_id']}").json()
    assert "forecast" in [t["name"] for t in copy["tools"]]
