"""run_tool, the agent loop's entry point for custom tools, and the local sandbox's contract."""

from __future__ import annotations

import json
import uuid

import pytest

from o.agent import lifecycle
from o.agent.lifecycle import AgentSpec
from o.store import orgs
from o.store.db import Database
from o.tools import catalog
from o.tools.catalog import ToolSpec
from o.tools.execute import run_tool
from o.tools.sandbox import Limits, LocalProcessSandbox, ToolInvocation
from tests.wiring import SECRETS

ENV_TOOL = '''
import os
def read_secret(name: str) -> str:
    """Return a variable of the tool's environment."""
    return os.environ.get(name, "<unset>")
'''


@pytest.fixture(scope="module")
def sandbox() -> LocalProcessSandbox:
    return LocalProcessSandbox()


def make_org(db: Database) -> str:
    with db.transaction() as conn:
        return orgs.get_or_create_org(conn, f"org-{uuid.uuid4()}")["id"]


def make_agent(db: Database, org: str, name: str = "a") -> str:
    with db.transaction() as conn:
        return lifecycle.create(conn, org, AgentSpec(name=name)).agent["id"]


def test_agent_variables_reach_only_that_agents_runs(db: Database, sandbox: LocalProcessSandbox) -> None:
    org = make_org(db)
    first, second = make_agent(db, org, "first"), make_agent(db, org, "second")
    with db.transaction() as conn:
        tool = catalog.create(conn, org, ToolSpec(source_code=ENV_TOOL))
        for agent in (first, second):
            catalog.attach(conn, org, agent, tool["id"])
        catalog.set_agent_env(conn, org, first, {"WEATHER_KEY": "first-only"}, secrets=SECRETS)
    mine = run_tool(db, org, first, "read_secret", {"name": "WEATHER_KEY"}, sandbox, secrets=SECRETS)
    assert (mine.status, mine.func_return) == ("success", "first-only")
    theirs = run_tool(db, org, second, "read_secret", {"name": "WEATHER_KEY"}, sandbox, secrets=SECRETS)
    assert (theirs.status, theirs.func_return) == ("success", "<unset>")
    # inside the caller's transaction too
    with db.transaction() as conn:
        again = run_tool(conn, org, first, "read_secret", {"name": "WEATHER_KEY"}, sandbox, secrets=SECRETS)
    assert again.func_return == "first-only"


def test_missing_detached_and_foreign_tools_are_error_results(db: Database, sandbox: LocalProcessSandbox) -> None:
    org, other_org = make_org(db), make_org(db)
    agent, foreign_agent = make_agent(db, org), make_agent(db, other_org)
    with db.transaction() as conn:
        tool = catalog.create(conn, org, ToolSpec(source_code=ENV_TOOL))
        catalog.attach(conn, org, agent, tool["id"])
    missing = run_tool(db, org, agent, "nope", {}, sandbox, secrets=SECRETS)
    assert missing.status == "error" and "no tool named 'nope'" in missing.func_return
    # the other organization's agent cannot run this organization's tool, nor be named with it
    assert (
        run_tool(db, other_org, foreign_agent, "read_secret", {"name": "X"}, sandbox, secrets=SECRETS).status == "error"
    )
    assert run_tool(db, other_org, agent, "read_secret", {"name": "X"}, sandbox, secrets=SECRETS).message.endswith(
        "not found"
    )
    with db.transaction() as conn:
        catalog.detach(conn, org, agent, tool["id"])
    assert run_tool(db, org, agent, "read_secret", {"name": "X"}, sandbox, secrets=SECRETS).status == "error"


def test_wrong_arguments_and_return_limit(db: Database, sandbox: LocalProcessSandbox) -> None:
    org = make_org(db)
    agent = make_agent(db, org)
    source = "def echo(text: str) -> str:\n    return text * 100\n"
    with db.transaction() as conn:
        tool = catalog.create(conn, org, ToolSpec(source_code=source, return_char_limit=50))
        catalog.attach(conn, org, agent, tool["id"])
    bad = run_tool(db, org, agent, "echo", {"wrong": 1}, sandbox, secrets=SECRETS)
    assert bad.status == "error" and "TypeError" in bad.message and "wrong" in bad.message
    long = run_tool(db, org, agent, "echo", {"text": "abc"}, sandbox, secrets=SECRETS)
    assert long.status == "success" and len(long.func_return) == 50 and "300 characters" in long.func_return


def test_prints_cannot_forge_the_result(sandbox: LocalProcessSandbox) -> None:
    forged = json.dumps({"status": "success", "return": "forged", "length": 6})
    source = f"import sys\ndef tool():\n    print({forged!r})\n    sys.stderr.write({forged!r})\n    return 'real'\n"
    result = sandbox.run(ToolInvocation(source, "tool"))
    assert result.func_return == "real"
    assert "forged" in result.stdout and "forged" in result.stderr


def test_exit_without_result_and_non_json_arguments(sandbox: LocalProcessSandbox) -> None:
    exited = sandbox.run(ToolInvocation("import os\ndef tool():\n    os._exit(3)\n", "tool"))
    assert exited.status == "error" and "exited with code 3" in exited.message
    raised = sandbox.run(ToolInvocation("import sys\ndef tool():\n    sys.exit(4)\n", "tool"))
    assert raised.status == "error" and "SystemExit" in raised.message
    odd = sandbox.run(ToolInvocation("def tool(x):\n    return x\n", "tool", {"x": object()}))
    assert odd.status == "error" and "not JSON" in odd.message


def test_values_are_rendered_as_json_and_async_tools_run(sandbox: LocalProcessSandbox) -> None:
    result = sandbox.run(ToolInvocation("def tool():\n    return {'a': [1, 2]}\n", "tool"))
    assert json.loads(result.func_return) == {"a": [1, 2]}
    coroutine = sandbox.run(ToolInvocation("async def tool(x: int):\n    return x + 1\n", "tool", {"x": 1}))
    assert coroutine.func_return == "2"


def test_without_isolation_limits_still_apply() -> None:
    plain = LocalProcessSandbox(isolate=False)
    assert plain.probe() == ("rlimits",)
    result = plain.run(
        ToolInvocation(
            "def tool():\n    return len(bytearray(10 * 1024 ** 3))\n",
            "tool",
            limits=Limits(memory_bytes=256 * 1024 * 1024),
        )
    )
    assert result.status == "limit_exceeded"


def test_concurrent_runs_do_not_mix(sandbox: LocalProcessSandbox) -> None:
    from concurrent.futures import ThreadPoolExecutor

    source = "import time\ndef tool(n: int):\n    print(n)\n    time.sleep(0.05)\n    return n * n\n"
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda n: sandbox.run(ToolInvocation(source, "tool", {"n": n})), range(12)))
    assert [(r.func_return, r.stdout) for r in results] == [(str(n * n), f"{n}\n") for n in range(12)]


def test_network_can_be_allowed_by_the_operator() -> None:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    source = "import socket\ndef tool(port: int):\n    socket.create_connection(('127.0.0.1', port), 2).close()\n"
    try:
        result = LocalProcessSandbox(allow_network=True).run(ToolInvocation(source, "tool", {"port": port}))
    finally:
        listener.close()
    assert result.status == "success", result
    assert "netns" not in result.isolation
