"""A user's Python tool, attached through the tools API, runs in the sandbox during a step."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from o.agent.engine import Engine
from o.agent.step.agent_cache import AgentCache
from o.agent.tools import SandboxExecutor
from o.store import runs as run_store
from o.tools.sandbox.local import LocalProcessSandbox
from tests.integration.agent.conftest import create_agent, say
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call
from tests.wiring import SECRETS

MULTIPLY = '''
def multiply(a: int, b: int) -> int:
    """Multiply two integers.

    Args:
        a: the first factor
        b: the second factor
    """
    print("multiplying")
    return a * b
'''

EXPLODE = '''
def explode(reason: str) -> str:
    """Always fails.

    Args:
        reason: why
    """
    raise RuntimeError(reason)
'''


@pytest.fixture
def sandboxed(engine: Engine) -> Engine:
    engine.tools = SandboxExecutor(engine.db, LocalProcessSandbox(), SECRETS)
    return engine


def _attach(api: TestClient, agent_id: str, source: str) -> dict:
    tool = api.post("/v1/tools/", json={"source_code": source})
    assert tool.status_code == 200, tool.text
    attached = api.patch(f"/v1/agents/{agent_id}/tools/attach/{tool.json()['id']}")
    assert attached.status_code == 200, attached.text
    return tool.json()


def test_custom_tool_runs_in_the_sandbox(sandboxed: Engine, api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    _attach(api, agent["id"], MULTIPLY)
    _attach(api, agent["id"], EXPLODE)
    openai_server.push(
        call("multiply", a=6, b=7, request_heartbeat=True),
        call("explode", reason="boom"),
        call("send_message", message="6 x 7 = 42"),
    )
    out = say(api, agent["id"], "what is 6 times 7?")
    # the model was offered the user's tools with their schemas next to the built-ins
    offered = {t["function"]["name"]: t["function"] for t in openai_server.requests[0]["tools"]}
    assert offered["multiply"]["parameters"]["properties"]["a"]["type"] == "integer"
    assert "request_heartbeat" in offered["multiply"]["parameters"]["properties"]
    returns = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert returns[0]["status"] == "success" and returns[0]["tool_return"] == "42"
    assert returns[0]["stdout"] == ["multiplying\n"]
    assert returns[1]["status"] == "error" and "boom" in returns[1]["tool_return"]
    assert out["messages"][-1]["content"] == "6 x 7 = 42"
    # the tool result went back to the model as the answer to its call
    tool_message = openai_server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "42"


def test_without_a_sandbox_user_tools_fail_softly(api: TestClient, openai_server: OpenAIServer) -> None:
    agent = create_agent(api, openai_server)
    _attach(api, agent["id"], MULTIPLY)
    openai_server.push(call("multiply", a=1, b=2), call("send_message", message="could not"))
    out = say(api, agent["id"], "1 x 2?")
    [result] = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert result["status"] == "error" and "no sandbox" in result["tool_return"]


def test_a_step_offers_a_tool_as_it_stands_after_the_tool_or_its_attachment_changes(
    api: TestClient, openai_server: OpenAIServer
) -> None:
    """Steps keep the agents they read per process (o.agent.step.agent_cache), for the version of the agent
    row and of each tool and attachment: a change to the tool's own row, which leaves the agent's row as
    it was, is offered at the next step, and so is a detach."""
    agent = create_agent(api, openai_server)
    tool = _attach(api, agent["id"], MULTIPLY)

    def offered() -> dict[str, dict]:
        openai_server.push(call("send_message", message="ok"))
        say(api, agent["id"], "hi")
        return {t["function"]["name"]: t["function"] for t in openai_server.requests[-1]["tools"]}

    assert offered()["multiply"]["description"].startswith("Multiply two integers")
    changed = api.patch(f"/v1/tools/{tool['id']}", json={"description": "Multiplies, now described anew."})
    assert changed.status_code == 200, changed.text
    assert offered()["multiply"]["description"] == "Multiplies, now described anew."
    detached = api.patch(f"/v1/agents/{agent['id']}/tools/detach/{tool['id']}")
    assert detached.status_code == 200, detached.text
    assert "multiply" not in offered()


def test_the_agent_a_step_reads_follows_a_change_to_its_tool_alone(
    api: TestClient, openai_server: OpenAIServer, engine: Engine
) -> None:
    """A tool's change that is no new version of it (its tags, its pip requirements: the sandbox reads
    them from the tool's row) leaves its agents' rows as they were; the agent a step reads follows it."""
    agent = create_agent(api, openai_server)
    tool = _attach(api, agent["id"], MULTIPLY)
    openai_server.push(call("send_message", message="ok"))
    run_id = say(api, agent["id"], "hi")["messages"][-1]["run_id"]
    cache = AgentCache()

    def tags() -> list[str]:
        with engine.db.read() as conn:
            state = run_store.load_state(conn, run_id)
            assert state.run is not None
            read = cache.agent(conn, state.run.organization_id, state.run.agent_id, state.agent_version)
        assert read is not None
        return next(t["tags"] for t in read["tools_json"] if t["id"] == tool["id"])

    assert tags() == [] and tags() == [] and (cache.hits, cache.misses) == (1, 1)
    changed = api.patch(f"/v1/tools/{tool['id']}", json={"tags": ["fresh"]})
    assert changed.status_code == 200, changed.text
    assert tags() == ["fresh"] and cache.misses == 2
