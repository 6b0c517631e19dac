"""MCP tools in the agent loop: a scripted model calls an MCP server's tools (a real server, over
streamable HTTP and stdio) and reads every outcome as a tool return, successes and failures alike: a
failing tool, one past its timeout, a huge result, a tool the server no longer has, a server that went
away. The run goes on to its answer each time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.agent.engine import Engine
from o.agent.tools import SandboxExecutor
from o.config import settings_from
from o.store.db import Database
from o.tools.sandbox.local import LocalProcessSandbox
from tests import wiring
from tests.integration.agent.conftest import create_agent, say
from tests.integration.conftest import new_org_key
from tests.servers.mcp_server import HttpMcpServer, stdio_command
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call


@pytest.fixture
def mcp_api(engine: Engine, db: Database) -> Iterator[TestClient]:
    settings = settings_from({"O_MCP_CALL_TIMEOUT_S": "1"})
    servers = runtime.mcp_servers(settings, db, wiring.SECRETS)
    engine.tools = SandboxExecutor(db, LocalProcessSandbox(), wiring.SECRETS, mcp=servers)
    app = wiring.app(db, engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        yield client
    servers.pool.close()


def _attach_all(api: TestClient, agent_id: str, server_id: str) -> None:
    tools = api.get(f"/v1/mcp-servers/{server_id}/tools").json()
    for tool in tools:
        attached = api.patch(f"/v1/agents/{agent_id}/tools/attach/{tool['id']}")
        assert attached.status_code == 200, attached.text


def _returns(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in out["messages"] if m["message_type"] == "tool_return_message"]


def test_the_loop_calls_mcp_tools_and_reads_every_failure_as_a_tool_error(
    mcp_api: TestClient, openai_server: OpenAIServer
) -> None:
    with HttpMcpServer() as server:
        created = mcp_api.post("/v1/mcp-servers/", json={"server_name": "calc", "config": {"server_url": server.url}})
        assert created.status_code == 200, created.text
        agent = create_agent(mcp_api, openai_server)
        _attach_all(mcp_api, agent["id"], created.json()["id"])

        def server_goes_away(_: dict[str, Any]) -> Any:
            server.stop()
            return call("add", a=1, b=1, request_heartbeat=True)

        server.remove_tool("extra_tool")  # still attached: the server answers that it has no such tool
        openai_server.push(
            call("add", a=2, b=3, request_heartbeat=True),
            call("fail", message="kaput", request_heartbeat=True),
            call("slow", seconds=5, request_heartbeat=True),
            call("huge", chars=100_000, request_heartbeat=True),
            call("extra_tool", value="x", request_heartbeat=True),
            server_goes_away,
            call("send_message", message="done"),
        )
        out = say(mcp_api, agent["id"], "use your tools")
    offered = {t["function"]["name"]: t["function"] for t in openai_server.requests[0]["tools"]}
    assert offered["add"]["parameters"]["properties"]["b"]["type"] == "integer"
    assert "request_heartbeat" in offered["add"]["parameters"]["properties"]
    returns = _returns(out)
    assert [r["status"] for r in returns] == ["success", "error", "error", "success", "error", "error"]
    assert returns[0]["tool_return"] == "5"
    assert "fail" in returns[1]["tool_return"]
    assert "no result within 1 s" in returns[2]["tool_return"]
    assert len(returns[3]["tool_return"]) == 6000 and "truncated: 100000 characters" in returns[3]["tool_return"]
    assert "Unknown tool" in returns[4]["tool_return"]
    assert "connect" in returns[5]["tool_return"].lower()
    assert out["messages"][-1]["content"] == "done"
    assert out["stop_reason"]["stop_reason"] == "end_turn"


def test_the_loop_calls_a_stdio_servers_tool(mcp_api: TestClient, openai_server: OpenAIServer) -> None:
    command, args = stdio_command()
    body = {"server_name": "local", "config": {"command": command, "args": args}}
    created = mcp_api.post("/v1/mcp-servers/", json=body)
    assert created.status_code == 200, created.text
    agent = create_agent(mcp_api, openai_server)
    _attach_all(mcp_api, agent["id"], created.json()["id"])
    openai_server.push(call("echo", text="from stdio", request_heartbeat=True), call("send_message", message="ok"))
    returns = _returns(say(mcp_api, agent["id"], "echo"))
    assert [(r["status"], r["tool_return"]) for r in returns] == [("success", "from stdio")]
