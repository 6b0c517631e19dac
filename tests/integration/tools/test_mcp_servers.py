"""MCP servers through letta-client in strict mode, against a real MCP server written with the same SDK
(tests/servers/mcp_server.py) over streamable HTTP, SSE and stdio: the nine ``mcp_servers`` operations,
secrets masked, unreachable servers, malformed tools, tools that disappear, timeouts, result caps, and
a pooled connection that outlives the server restarting."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import letta_client
import pytest
from letta_client import Letta

from o.errors import InvalidInput
from o.net.outbound import OutboundPolicy
from o.store import orgs
from o.store.db import Database
from o.tools.mcp.pool import McpPool
from o.tools.mcp.servers import MASKED, McpLimits, McpServers, ServerConfig
from tests.integration.conftest import new_org_key
from tests.integration.sdk.conftest import Live, live, raw_client, strict_client  # noqa: F401
from tests.servers.mcp_server import HttpMcpServer, free_port, stdio_command
from tests.wiring import SECRETS

TOKEN = "s3cret-token"
OFFERED = {"add", "echo", "slow", "fail", "huge", "extra_tool"}


@pytest.fixture(scope="module")
def http_server() -> Iterator[HttpMcpServer]:
    with HttpMcpServer(token=TOKEN) as server:
        yield server


@pytest.fixture
def sdk(live: Live, db: Database) -> Letta:  # noqa: F811
    # an organization per test: tool names are unique within one, and every server here offers the same
    return strict_client(live, new_org_key(db))


def _http(sdk: Letta, server: HttpMcpServer, name: str, **extra: Any) -> Any:
    config: dict[str, Any] = {"server_url": server.url, "mcp_server_type": server.kind, **extra}
    return sdk.mcp_servers.create(server_name=name, config=config)  # type: ignore[arg-type]


def _tool_id(sdk: Letta, server_id: str, name: str) -> str:
    return next(t.id for t in sdk.mcp_servers.tools.list(server_id) if t.name == name)  # type: ignore[misc]


def test_the_nine_operations_on_a_streamable_http_server(sdk: Letta, http_server: HttpMcpServer) -> None:
    created = _http(
        sdk, http_server, "calc", auth_header="Authorization", auth_token=TOKEN, custom_headers={"X-A": "b"}
    )
    # the token reached the server (it refuses requests without it); responses never show it
    assert created.auth_token == MASKED and created.custom_headers == {"X-A": MASKED}
    assert created.mcp_server_type == "streamable_http" and created.to_dict()["healthy"] is True
    assert created.id in [s.id for s in sdk.mcp_servers.list()]
    assert sdk.mcp_servers.retrieve(created.id).server_name == "calc"

    tools = sdk.mcp_servers.tools.list(created.id)
    # bad_schema publishes an input schema that is no valid JSON Schema: skipped, the rest offered
    assert {t.name for t in tools} == OFFERED
    add = next(t for t in tools if t.name == "add")
    assert add.tool_type == "external_mcp" and add.json_schema["parameters"]["properties"]["a"]["type"] == "integer"
    assert sdk.mcp_servers.tools.retrieve(add.id, mcp_server_id=created.id).name == "add"
    # MCP tools are the organization's tools too
    assert add.id in [t.id for t in sdk.tools.list(name="add")]

    ran = sdk.mcp_servers.tools.run(add.id, mcp_server_id=created.id, args={"a": 2, "b": 40})
    assert ran.status == "success" and ran.func_return == "42"
    failed = sdk.mcp_servers.tools.run(_tool_id(sdk, created.id, "fail"), mcp_server_id=created.id, args={})
    assert failed.status == "error" and "fail" in str(failed.func_return)
    huge = sdk.mcp_servers.tools.run(
        _tool_id(sdk, created.id, "huge"), mcp_server_id=created.id, args={"chars": 50_000}
    )
    # cut to the tool's return_char_limit, saying so
    assert huge.status == "success" and len(str(huge.func_return)) == 6000
    assert "[truncated: 50000 characters, limit 6000]" in str(huge.func_return)

    updated = sdk.mcp_servers.update(
        created.id, server_name="calc2", config={"server_url": http_server.url, "auth_token": MASKED}
    )
    # a masked token sent back keeps the stored one: the reconnect still passed the server's check
    assert updated.server_name == "calc2" and updated.auth_token == MASKED and updated.to_dict()["healthy"]

    refreshed: Any = sdk.mcp_servers.refresh(created.id)
    assert refreshed["healthy"] and set(refreshed["unchanged"]) == OFFERED
    assert [s["name"] for s in refreshed["skipped"]] == ["bad_schema"]
    assert "not valid JSON Schema" in refreshed["skipped"][0]["reason"]

    sdk.mcp_servers.delete(created.id)
    with pytest.raises(letta_client.NotFoundError):
        sdk.mcp_servers.retrieve(created.id)
    assert list(sdk.tools.list(name="add")) == []


def test_a_wrong_token_is_a_502_naming_the_reason_and_an_unhealthy_server(
    sdk: Letta, http_server: HttpMcpServer
) -> None:
    with pytest.raises(letta_client.APIStatusError) as caught:
        _http(sdk, http_server, "locked", auth_token="wrong")
    assert caught.value.status_code == 502
    body: Any = caught.value.body
    assert body["code"] == "mcp_server_unreachable" and "401" in body["detail"]
    stored = next(s for s in sdk.mcp_servers.list() if s.server_name == "locked")
    assert stored.to_dict()["healthy"] is False and "401" in stored.to_dict()["last_error"]
    assert sdk.mcp_servers.tools.list(stored.id) == []
    # a retry of the create with the right token replaces the server that never connected
    again = _http(sdk, http_server, "locked", auth_token=TOKEN)
    assert again.id == stored.id and again.to_dict()["healthy"] is True
    assert {t.name for t in sdk.mcp_servers.tools.list(again.id)} == OFFERED


def test_an_unreachable_server_then_the_same_name_is_a_conflict_once_healthy(sdk: Letta) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(letta_client.APIStatusError) as caught:
        sdk.mcp_servers.create(server_name="gone", config={"server_url": url})
    assert caught.value.status_code == 502 and "connect" in str(caught.value.body).lower()
    with HttpMcpServer(port=int(url.split(":")[2].split("/")[0])) as server:
        created = _http(sdk, server, "gone")
        assert created.to_dict()["healthy"] is True
        with pytest.raises(letta_client.ConflictError):
            _http(sdk, server, "gone")
        server.stop()
        with pytest.raises(letta_client.APIStatusError) as down:
            sdk.mcp_servers.refresh(created.id)
        assert down.value.status_code == 502
        # its tools stay as they were; the server is marked unhealthy
        assert sdk.mcp_servers.retrieve(created.id).to_dict()["healthy"] is False
        assert {t.name for t in sdk.mcp_servers.tools.list(created.id)} == OFFERED


def test_refresh_reports_tools_that_disappeared_and_keeps_them_on_agents(
    sdk: Letta,
    live: Live,  # noqa: F811
) -> None:
    with HttpMcpServer() as server:
        created = _http(sdk, server, "shrinking")
        extra, echo = _tool_id(sdk, created.id, "extra_tool"), _tool_id(sdk, created.id, "echo")
        agent = sdk.agents.create(llm_config=live.llm_config(), include_base_tools=False)  # type: ignore[arg-type]
        sdk.agents.tools.attach(extra, agent_id=agent.id)
        server.remove_tool("extra_tool")
        server.remove_tool("echo")
        report: Any = sdk.mcp_servers.refresh(created.id, agent_id=agent.id)
    # echo was on no agent: gone; extra_tool stays on the agent that has it, reported with it
    assert report["removed"] == ["echo"] and echo not in [t.id for t in sdk.mcp_servers.tools.list(created.id)]
    assert report["disappeared"] == [{"name": "extra_tool", "tool_id": extra, "agent_ids": [agent.id]}]
    assert extra in [t.id for t in sdk.agents.tools.list(agent.id)]
    # run through the agent (agents.tools.run): an MCP tool goes to its server (stopped by now)
    ran = sdk.agents.tools.run("extra_tool", agent_id=agent.id, args={"value": "x"})
    assert ran.status == "error" and "Error executing MCP tool extra_tool" in str(ran.func_return)
    with pytest.raises(letta_client.NotFoundError):
        sdk.mcp_servers.refresh(created.id, agent_id="agent-00000000-0000-0000-0000-000000000000")


def test_an_sse_server(sdk: Letta) -> None:
    with HttpMcpServer("sse") as server:
        sse = _http(sdk, server, "sse-calc")
        assert sse.mcp_server_type == "sse"
        ran = sdk.mcp_servers.tools.run(_tool_id(sdk, sse.id, "add"), mcp_server_id=sse.id, args={"a": 1, "b": 1})
        assert ran.func_return == "2"


def test_a_stdio_server(sdk: Letta) -> None:
    command, args = stdio_command()
    stdio = sdk.mcp_servers.create(
        server_name="stdio-calc", config={"command": command, "args": args, "env": {"MCP_TEST_NO_EXTRA": "1"}}
    )
    # the environment reached the process (it left out extra_tool) and is masked in every answer
    assert stdio.mcp_server_type == "stdio" and stdio.env == {"MCP_TEST_NO_EXTRA": MASKED}
    assert {t.name for t in sdk.mcp_servers.tools.list(stdio.id)} == OFFERED - {"extra_tool"}
    echo = _tool_id(sdk, stdio.id, "echo")
    assert sdk.mcp_servers.tools.run(echo, mcp_server_id=stdio.id, args={"text": "hi"}).func_return == "hi"


def test_bad_configurations_are_4xx_naming_the_field(sdk: Letta) -> None:
    with pytest.raises(letta_client.UnprocessableEntityError) as caught:
        sdk.mcp_servers.create(server_name="ftp", config={"server_url": "ftp://example.com/mcp"})
    assert "not an http or https URL" in str(caught.value.body)
    with pytest.raises(letta_client.UnprocessableEntityError):
        sdk.mcp_servers.create(server_name="", config={"server_url": "http://127.0.0.1:1/mcp"})
    assert "ftp" not in [s.server_name for s in sdk.mcp_servers.list()]


# -- the domain, with other settings ---------------------------------------------------------------------


def _servers(db: Database, *, loopback: bool = True, stdio: bool = True, **limits: Any) -> McpServers:
    policy = OutboundPolicy.allowing([], allow_loopback=loopback)
    return McpServers(db, SECRETS, McpPool(policy, connect_timeout_s=5), policy, McpLimits(stdio, **limits))


def _org(db: Database) -> str:
    with db.transaction() as conn:
        return str(orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"])


def test_stdio_and_denied_addresses_are_refused_where_the_operator_says(db: Database) -> None:
    org = _org(db)
    command, args = stdio_command()
    with pytest.raises(InvalidInput, match="O_MCP_STDIO"):
        _servers(db, stdio=False).create(org, "no-stdio", ServerConfig("stdio", command=command, args=tuple(args)))
    aws_like = _servers(db, loopback=False)
    with pytest.raises(InvalidInput, match="loopback"):
        aws_like.create(org, "literal", ServerConfig("streamable_http", server_url="http://127.0.0.1:9/mcp"))
    # a name is judged on what it resolves to, when connecting: 422 too, and stored unhealthy
    with pytest.raises(InvalidInput, match="loopback"):
        aws_like.create(org, "named", ServerConfig("streamable_http", server_url="http://localhost:9/mcp"))
    assert [s["healthy"] for s in aws_like.all(org) if s["server_name"] == "named"] == [False]


def test_timeouts_caps_and_a_restarted_server(db: Database) -> None:
    org = _org(db)
    servers = _servers(db, call_timeout_s=0.5, max_result_chars=1000)
    with HttpMcpServer() as server:
        created = servers.create(org, "restarts", ServerConfig("streamable_http", server_url=server.url))
        tools = {t["name"]: t for t in servers.tools(org, created["id"])}
        started = time.monotonic()
        slow = servers.call(tools["slow"], {"seconds": 5})
        assert slow.status == "error" and "no result within 0.5 s" in slow.func_return
        assert time.monotonic() - started < 3
        # the cancelled call left the pooled connection usable
        assert servers.call(tools["add"], {"a": 1, "b": 2}).func_return == "3"
        huge = servers.call(tools["huge"], {"chars": 300_000})
        assert huge.ok and "[truncated: 300000 characters, limit 1000]" in huge.func_return
        server.restart()
        # the pooled connection's session died with the server: the call reconnects, once
        assert servers.call(tools["add"], {"a": 2, "b": 2}).func_return == "4"
        assert len(servers.pool._connections) == 1
        server.stop()
        gone = servers.call(tools["add"], {"a": 2, "b": 2})
    assert gone.status == "error" and "connect" in gone.func_return.lower()
    servers.delete(org, created["id"])
    assert servers.call(tools["add"], {}).func_return.endswith("its MCP server was deleted")
    servers.pool.close()
