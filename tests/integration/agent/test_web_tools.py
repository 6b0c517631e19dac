"""The outside-world built-ins in the agent loop, end to end: an agent created with Letta's tool names
(``tools=["run_code", "fetch_webpage", "web_search"]``) calls each through a scripted model; run_code runs
in the local sandbox and, under moto, in the sandbox Lambda; fetch_webpage reads a local website;
web_search asks a local server speaking Exa's protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from o.agent import lifecycle
from o.agent.engine import Engine
from o.agent.lifecycle import AgentSpec
from o.agent.tools import SandboxExecutor
from o.aws.sandbox import LambdaSandbox
from o.config import settings_from
from o.llm.keys import StaticKeySource
from o.net.outbound import OutboundPolicy
from o.store import orgs
from o.store import tools as tool_store
from o.tools import base
from o.tools.sandbox.base import Sandbox
from o.tools.sandbox.local import LocalProcessSandbox
from o.tools.web.tools import WebTools
from tests.integration.agent.conftest import create_agent, say
from tests.integration.conftest import new_org_key
from tests.lambdas import Context, LambdaService, aws_credentials, create_function, fresh_handler
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import ScriptedCall, calls
from tests.servers.search_server import CORPUS, SearchServer
from tests.servers.web_server import WebServer
from tests.wiring import SECRETS

KEY = "exa-operator-key"
WEB_TOOLS = ["run_code", "fetch_webpage", "web_search"]


@pytest.fixture
def site() -> Iterator[WebServer]:
    with WebServer() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def exa() -> Iterator[SearchServer]:
    with SearchServer("exa", key=KEY) as server:
        yield server  # type: ignore[misc]


def equip(engine: Engine, sandbox: Sandbox, search: SearchServer | None) -> None:
    """The engine's tools as the composition root wires them, with the search provider at ``search``."""
    environ = {"O_WEB_SEARCH_PROVIDER": "exa", "O_WEB_SEARCH_URL": search.origin} if search else {}
    web = WebTools.from_settings(
        settings_from(environ), sandbox, OutboundPolicy(allow_loopback=True), StaticKeySource({"exa": KEY})
    )
    engine.tools = SandboxExecutor(engine.db, sandbox, SECRETS, web)


def tool_returns(out: dict) -> dict[str, dict]:
    return {m["name"]: m for m in out["messages"] if m["message_type"] == "tool_return_message"}


def test_each_web_tool_in_the_agent_loop(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, site: WebServer, exa: SearchServer
) -> None:
    equip(engine, LocalProcessSandbox(), exa)
    # listed for the organization, as letta_builtin tools with Letta's arguments
    listed = {t["name"]: t for t in api.get("/v1/tools/", params={"tool_types": "letta_builtin"}).json()}
    assert set(listed) == set(WEB_TOOLS)
    assert listed["run_code"]["json_schema"]["parameters"]["required"] == ["code", "language"]
    agent = create_agent(api, openai_server, tools=WEB_TOOLS, include_base_tools=True)
    assert {t["name"] for t in agent["tools"]} >= set(WEB_TOOLS)
    openai_server.push(
        calls(
            ScriptedCall("run_code", {"code": "print('hi')\n21 * 2", "language": "python", "request_heartbeat": True}),
            ScriptedCall("fetch_webpage", {"url": f"{site.origin}/article", "request_heartbeat": True}),
            ScriptedCall("web_search", {"query": "letta agents", "num_results": 2, "request_heartbeat": True}),
        ),
        calls(ScriptedCall("send_message", {"message": "done"})),
    )
    out = say(api, agent["id"], "use your tools")
    offered = {t["function"]["name"]: t["function"] for t in openai_server.requests[0]["tools"]}
    assert set(WEB_TOOLS) <= set(offered)
    assert offered["web_search"]["parameters"]["properties"]["num_results"]["type"] == "integer"
    returns = tool_returns(out)
    assert all(returns[name]["status"] == "success" for name in WEB_TOOLS), returns
    ran = json.loads(returns["run_code"]["tool_return"])
    assert (ran["result"], ran["stdout"], ran["error"]) == ("42", "hi\n", None)
    assert returns["fetch_webpage"]["tool_return"].startswith("# The Analytical Engine")
    found = json.loads(returns["web_search"]["tool_return"])
    assert [r["url"] for r in found["results"]] == [CORPUS[0][1], CORPUS[1][1]]
    assert exa.seen[0]["headers"]["x-api-key"] == KEY
    # what each tool returned went back to the model
    fed_back = [m["content"] for m in openai_server.requests[1]["messages"] if m["role"] == "tool"]
    assert returns["fetch_webpage"]["tool_return"] in fed_back
    assert out["messages"][-1]["content"] == "done"


def test_failures_are_tool_errors_and_the_run_goes_on(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, site: WebServer, exa: SearchServer
) -> None:
    equip(engine, LocalProcessSandbox(), exa)
    agent = create_agent(api, openai_server, tools=WEB_TOOLS)
    exa.fail_with = 500
    openai_server.push(
        calls(
            ScriptedCall("run_code", {"code": "1/0", "language": "python", "request_heartbeat": True}),
            ScriptedCall("run_code", {"code": "console.log(1)", "language": "js", "request_heartbeat": True}),
            ScriptedCall("fetch_webpage", {"url": f"{site.origin}/image.png", "request_heartbeat": True}),
            ScriptedCall("web_search", {"query": "q", "request_heartbeat": True}),
        ),
        calls(ScriptedCall("send_message", {"message": "recovered"})),
    )
    out = say(api, agent["id"], "try")
    errors = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert [m["status"] for m in errors] == ["error"] * 4
    assert "ZeroDivisionError" in errors[0]["tool_return"]
    assert "python only" in errors[1]["tool_return"]
    assert "image/png" in errors[2]["tool_return"]
    assert "HTTP 500" in errors[3]["tool_return"]
    assert out["messages"][-1]["content"] == "recovered"


def test_web_search_is_offered_only_when_configured(
    engine: Engine, api: TestClient, openai_server: OpenAIServer
) -> None:
    equip(engine, LocalProcessSandbox(), None)
    listed = {t["name"] for t in api.get("/v1/tools/", params={"tool_types": "letta_builtin"}).json()}
    assert listed == {"run_code", "fetch_webpage"}
    refused = api.post("/v1/agents/", json={"name": "searcher", "tools": ["web_search"]})
    assert refused.status_code == 404 and "web_search" in refused.text


def test_an_agent_runs_a_web_tool_outside_a_conversation(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, site: WebServer
) -> None:
    equip(engine, LocalProcessSandbox(), None)
    agent = create_agent(api, openai_server, tools=["fetch_webpage"])
    ran = api.post(f"/v1/agents/{agent['id']}/tools/fetch_webpage/run", json={"args": {"url": f"{site.origin}/plain"}})
    assert ran.status_code == 200, ran.text
    assert ran.json()["status"] == "success" and ran.json()["func_return"] == "just text\n"


def test_an_agent_file_carries_its_web_tools_by_name(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, exa: SearchServer
) -> None:
    equip(engine, LocalProcessSandbox(), exa)
    agent = create_agent(api, openai_server, tools=WEB_TOOLS, include_base_tools=False)
    exported = api.get(f"/v1/agents/{agent['id']}/export")
    assert exported.status_code == 200, exported.text
    # imported where web_search is offered: all three; where it is not: the other two, web_search left out
    imported = api.post("/v1/agents/import", files={"file": ("a.af", exported.content, "application/json")})
    assert imported.status_code == 200, imported.text
    [copy] = imported.json()["agent_ids"]
    assert {t["name"] for t in api.get(f"/v1/agents/{copy}").json()["tools"]} == set(WEB_TOOLS)
    equip(engine, LocalProcessSandbox(), None)
    with TestClient(api.app, headers={"Authorization": f"Bearer {new_org_key(engine.db)}"}) as other:
        elsewhere = other.post("/v1/agents/import", files={"file": ("a.af", exported.content, "application/json")})
        assert elsewhere.status_code == 200, elsewhere.text
        [moved] = elsewhere.json()["agent_ids"]
        assert elsewhere.json()["skipped_tools"] == {moved: ["web_search"]}
        assert {t["name"] for t in other.get(f"/v1/agents/{moved}").json()["tools"]} == {"run_code", "fetch_webpage"}


@pytest.fixture
def lambda_sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[LambdaSandbox]:
    aws_credentials(monkeypatch, "eu-west-1")
    lambdas = LambdaService().install(monkeypatch)
    with mock_aws(config={"lambda": {"use_docker": False}}), fresh_handler("functions.tool_sandbox.handler") as module:
        create_function("o-tool-sandbox", "functions.tool_sandbox.handler.handler", region="eu-west-1")
        lambdas.serve("o-tool-sandbox", module.handler, Context("o-tool-sandbox", region="eu-west-1"))
        yield LambdaSandbox("o-tool-sandbox", region_name="eu-west-1")
    assert lambdas.events, "the sandbox Lambda was never invoked"


def test_run_code_in_the_agent_loop_through_the_sandbox_lambda(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, lambda_sandbox: LambdaSandbox
) -> None:
    equip(engine, lambda_sandbox, None)
    agent = create_agent(api, openai_server, tools=["run_code"])
    openai_server.push(
        calls(ScriptedCall("run_code", {"code": "import sys\nsys.version_info[0]", "language": "python"})),
    )
    out = say(api, agent["id"], "which python?")
    [ran] = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert ran["status"] == "success" and json.loads(ran["tool_return"])["result"] == "3"


def test_a_shadow_copy_keeps_the_web_tools_of_the_agent_it_copies(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, exa: SearchServer
) -> None:
    equip(engine, LocalProcessSandbox(), exa)
    agent = create_agent(api, openai_server, tools=WEB_TOOLS)
    with engine.db.transaction() as conn:
        scratch = orgs.get_or_create_org(conn, f"scratch-{agent['id']}")["id"]
        copy = lifecycle.create(conn, scratch, AgentSpec(name="shadow", include_base_tools=False)).agent["id"]
        base.attach_like(conn, scratch, copy, agent["id"])
        names = {row["name"] for row in tool_store.for_agent(conn, copy)}
    assert names == {t["name"] for t in agent["tools"]} and set(WEB_TOOLS) <= names


def test_what_a_web_tool_returns_is_cut_to_its_records_limit(
    engine: Engine, api: TestClient, openai_server: OpenAIServer, site: WebServer
) -> None:
    equip(engine, LocalProcessSandbox(), None)
    agent = create_agent(api, openai_server, tools=["run_code"])
    [record] = [t for t in agent["tools"] if t["name"] == "run_code"]
    assert record["return_char_limit"] == 20_000
    changed = api.patch(f"/v1/tools/{record['id']}", json={"return_char_limit": 100})
    assert changed.status_code == 200, changed.text
    ran = api.post(
        f"/v1/agents/{agent['id']}/tools/run_code/run", json={"args": {"code": "'z' * 5000", "language": "python"}}
    )
    assert ran.status_code == 200, ran.text
    assert len(ran.json()["func_return"]) == 100 and "truncated" in ran.json()["func_return"]
