"""The deployed agent loop, end to end under moto: the state machine definition synthesized from
the CDK app, started by the real API, invoking the real functions/agent_step handler through
the agent-step ``live`` alias, on the real Postgres and a local OpenAI wire-protocol server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.agent.tools import SandboxExecutor
from o.store.db import Database
from o.tools.sandbox.local import LocalProcessSandbox
from tests import wiring
from tests.integration.agent.conftest import create_agent, make_engine, say
from tests.integration.aws.agent_loop_moto import REGION, STEP_CONTEXT, Crash, Loop, agent_loop, synthesized_definition
from tests.integration.conftest import new_org_key
from tests.lambdas import aws_credentials, fresh_handler, service_environment
from tests.servers.mcp_server import HttpMcpServer
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call, echo


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    return synthesized_definition(tmp_path_factory.mktemp("synth"))


@pytest.fixture
def step_module(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """functions/agent_step/handler.py imported as Lambda imports it, configured by environment."""
    service_environment(monkeypatch, pg_url)
    aws_credentials(monkeypatch, REGION)
    with fresh_handler("functions.agent_step.handler") as module:
        yield module


@pytest.fixture(scope="module")
def timed_parts(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """The app synthesized with approvals that time out after one second."""
    return synthesized_definition(tmp_path_factory.mktemp("synth-timed"), {"o:approvalTimeoutSeconds": 1})


@pytest.fixture
def deployed(parts: list[Any], step_module: ModuleType, db: Database) -> Iterator[tuple[Loop, TestClient]]:
    with _deploy(parts, step_module, db) as pair:
        yield pair


@pytest.fixture
def deployed_with_approval_timeout(
    timed_parts: list[Any], step_module: ModuleType, db: Database
) -> Iterator[tuple[Loop, TestClient]]:
    with _deploy(timed_parts, step_module, db) as pair:
        yield pair


@contextmanager
def _deploy(parts: list[Any], step_module: ModuleType, db: Database) -> Iterator[tuple[Loop, TestClient]]:
    with agent_loop(parts, step_module.handler) as loop:
        # The step function's engine: its database, the test LLM keys, moto's Step Functions.
        step_engine = make_engine(db, sfn=loop.sfn)
        step_module._engine = step_engine
        # The API as deployed: runs start executions of the state machine instead of looping in-process.
        api_engine = make_engine(db, sfn=loop.sfn, state_machine_arn=loop.machine_arn, sync_wait_s=30)
        app = wiring.app(db, engine=api_engine)
        with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
            yield loop, client


def _only_execution(loop: Loop) -> str:
    (execution,) = loop.executions()
    return str(execution["executionArn"])


def _history(client: TestClient, agent_id: str) -> list[dict[str, Any]]:
    response = client.get(f"/v1/agents/{agent_id}/messages", params={"limit": 100})
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_conversation_runs_end_to_end_through_the_deployed_state_machine(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer
) -> None:
    loop, client = deployed
    agent = create_agent(client, openai_server)
    openai_server.push(
        call("core_memory_append", label="human", content="Lives in Oslo.", request_heartbeat=True),
        call("send_message", message="Oslo, noted."),
    )
    out = say(client, agent["id"], "I live in Oslo")
    assert [m["message_type"] for m in out["messages"]] == [
        "tool_call_message", "tool_return_message", "assistant_message",
    ]  # fmt: skip
    assert out["stop_reason"]["stop_reason"] == "end_turn"
    execution = loop.wait(_only_execution(loop))
    assert execution["status"] == "SUCCEEDED"
    assert [c["action"] for c in loop.calls] == ["step", "tools", "step", "tools"]
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"].endswith("Oslo.")
    assert len(openai_server.requests) == 2


def test_an_approval_pause_is_resumed_with_send_task_success(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer, db: Database
) -> None:
    loop, client = deployed
    agent = create_agent(
        client, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    openai_server.push(
        call("core_memory_append", _id="call_cat", label="human", content="Has a cat.", request_heartbeat=True)
    )
    out = say(client, agent["id"], "I have a cat")
    assert out["stop_reason"]["stop_reason"] == "requires_approval"
    pause = loop.wait_for_call(lambda c: c["action"] == "await_approval")
    execution = _only_execution(loop)
    run_id = out["usage"]["run_ids"][0]
    deadline = time.monotonic() + 10
    while True:
        with db.transaction() as conn:
            row = conn.execute("SELECT task_token FROM runs WHERE id = %s", (run_id,)).fetchone()
        if row and row["task_token"] == pause["task_token"]:
            break
        assert time.monotonic() < deadline, "the handler never stored the task token"
        time.sleep(0.05)
    assert loop.sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"

    # Approving through the API sends SendTaskSuccess with the stored token; the same execution goes on.
    openai_server.push(call("send_message", message="Cat noted."))
    resumed = client.post(
        f"/v1/agents/{agent['id']}/messages",
        json={"messages": [{"type": "approval", "approvals": [
            {"type": "approval", "tool_call_id": "call_cat", "approve": True},
        ]}]},
    )  # fmt: skip
    assert resumed.status_code == 200, resumed.text
    assert [m["message_type"] for m in resumed.json()["messages"]] == ["tool_return_message", "assistant_message"]
    assert loop.wait(execution)["status"] == "SUCCEEDED"
    assert loop.executions() == [e for e in loop.executions() if e["executionArn"] == execution]
    assert [c["action"] for c in loop.calls] == ["step", "await_approval", "step", "tools", "step", "tools"]
    assert client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"].endswith("Has a cat.")


def test_a_step_whose_lambda_dies_after_committing_is_retried_without_duplicates(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer
) -> None:
    loop, client = deployed
    died: list[str] = []

    def die_before_answering(event: dict[str, Any], result: dict[str, Any]) -> None:
        # The handler finished and committed; the environment dies before Lambda returns its answer
        # (a timeout), which Step Functions sees as Sandbox.Timedout and retries.
        if event["action"] not in died:
            died.append(event["action"])
            raise Crash("Sandbox.Timedout", "Task timed out after 300.00 seconds")

    loop.after = die_before_answering
    agent = create_agent(client, openai_server)
    openai_server.push(
        call("core_memory_append", _id="call_1", label="human", content="Likes tea.", request_heartbeat=True),
        call("send_message", _id="call_2", message="Tea it is."),
    )
    out = say(client, agent["id"], "I like tea")
    assert out["stop_reason"]["stop_reason"] == "end_turn"
    assert died == ["step", "tools"]
    execution = loop.wait(_only_execution(loop))
    assert execution["status"] == "SUCCEEDED"
    # Each crashed action ran twice; the LLM was asked once per step all the same.
    assert [c["action"] for c in loop.calls] == ["step", "step", "tools", "tools", "step", "tools"]
    assert len(openai_server.requests) == 2
    failures = [e for e in loop.history(_only_execution(loop)) if e["type"] == "TaskFailed"]
    assert [f["taskFailedEventDetails"]["error"] for f in failures] == ["Sandbox.Timedout", "Sandbox.Timedout"]

    history = _history(client, agent["id"])
    tool_calls = [m for m in history if m["message_type"] == "tool_call_message"]
    returns = [m for m in history if m["message_type"] == "tool_return_message"]
    assistant = [m for m in history if m["message_type"] == "assistant_message"]
    user = [m for m in history if m["message_type"] == "user_message"]
    assert [m["tool_call"]["tool_call_id"] for m in tool_calls] == ["call_1"]
    assert len(returns) == 1
    assert [m["content"] for m in assistant] == ["Tea it is."]
    assert len(user) == 1
    human = client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"]
    assert human.count("Likes tea.") == 1


def _run(client: TestClient, run_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_step_whose_lambda_keeps_dying_fails_the_run_after_the_retries(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer, db: Database, step_module: ModuleType
) -> None:
    loop, client = deployed

    def always_times_out(event: dict[str, Any]) -> None:
        if event["action"] == "step":
            raise Crash("Sandbox.Timedout", "Task timed out after 300.00 seconds")

    loop.before = always_times_out
    agent = create_agent(client, openai_server)
    started = client.post(
        f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "Hello"}]}
    )
    assert started.status_code == 200, started.text
    run_id = started.json()["id"]
    assert _run(client, run_id)["status"] in ("created", "running")

    execution = loop.wait(_only_execution(loop), timeout=60)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "AgentRunFailed"
    # Three attempts of the step, then the real handler's fail action.
    assert [c["action"] for c in loop.calls] == ["step", "step", "step", "fail"]
    assert openai_server.requests == []

    run = _run(client, run_id)
    assert run["status"] == "failed"
    assert run["stop_reason"] == "error"
    assert "Sandbox.Timedout" in run["error"] and "Task timed out after 300.00 seconds" in run["error"]
    assert client.get("/v1/runs/", params={"agent_id": agent["id"], "active": True}).json() == []
    # The fail action is idempotent: a retried MarkFailed leaves the failed run as it is.
    with db.transaction() as conn:
        before = conn.execute("SELECT error, completed_at FROM runs WHERE id = %s", (run_id,)).fetchone()
    again = loop.calls[-1]
    answer = step_module.handler(again, STEP_CONTEXT)
    assert answer == {
        "run_id": run_id, "iteration": 0, "next": "failed", "stop_reason": "error", "conversation_id": None,
    }  # fmt: skip
    with db.transaction() as conn:
        assert conn.execute("SELECT error, completed_at FROM runs WHERE id = %s", (run_id,)).fetchone() == before


def test_a_run_is_marked_failed_even_when_mark_failed_fails_at_first(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer
) -> None:
    loop, client = deployed
    away: list[int] = []

    def bug_then_database_away(event: dict[str, Any]) -> None:
        if event["action"] == "step":
            raise Crash("KeyError", "a bug in the step")
        if event["action"] == "fail" and len(away) < 2:
            away.append(1)
            raise Crash("DatabaseUnavailable", "the database is unavailable")

    loop.before = bug_then_database_away
    agent = create_agent(client, openai_server)
    started = client.post(
        f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "Hello"}]}
    )
    run_id = started.json()["id"]
    execution = loop.wait(_only_execution(loop), timeout=60)
    assert execution["status"] == "FAILED" and execution.get("error") == "AgentRunFailed"
    assert [c["action"] for c in loop.calls] == ["step", "fail", "fail", "fail"]
    run = _run(client, run_id)
    assert run["status"] == "failed" and "KeyError" in run["error"] and "a bug in the step" in run["error"]


def test_concurrent_sends_through_the_state_machine_queue_and_each_reply_answers_its_own_message(
    deployed: tuple[Loop, TestClient], openai_server: OpenAIServer
) -> None:
    loop, client = deployed
    openai_server.script.default = echo(delay_s=0.05)
    agent = create_agent(client, openai_server)
    texts = [f"hello number {i}" for i in range(4)]

    def send(text: str) -> str:
        r = client.post(
            f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": text}]}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["id"])

    with ThreadPoolExecutor(max_workers=len(texts)) as pool:
        run_ids = list(pool.map(send, texts))
    for execution in loop.executions():
        assert loop.wait(execution["executionArn"], timeout=60)["status"] == "SUCCEEDED"
    assert all(_run(client, run_id)["status"] == "completed" for run_id in run_ids)
    turns = [
        (m["message_type"], m["content"])
        for m in reversed(_history(client, agent["id"]))
        if m["message_type"] in ("user_message", "assistant_message")
    ]
    assert sorted(t for kind, t in turns if kind == "user_message") == texts
    for user, reply in zip(turns[::2], turns[1::2], strict=True):
        assert user[0] == "user_message" and reply == ("assistant_message", user[1]), turns


def test_an_approval_wait_that_times_out_fails_the_run(
    deployed_with_approval_timeout: tuple[Loop, TestClient], openai_server: OpenAIServer, db: Database
) -> None:
    loop, client = deployed_with_approval_timeout
    agent = create_agent(
        client, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    openai_server.push(
        call("core_memory_append", _id="call_dog", label="human", content="Has a dog.", request_heartbeat=True)
    )
    out = say(client, agent["id"], "I have a dog")
    assert out["stop_reason"]["stop_reason"] == "requires_approval"
    run_id = out["usage"]["run_ids"][0]

    # Nobody approves: after its one-second timeout the wait fails with States.Timeout and the run with it.
    execution = loop.wait(_only_execution(loop), timeout=30)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "AgentRunFailed"
    assert [c["action"] for c in loop.calls] == ["step", "await_approval", "fail"]
    assert loop.calls[-1]["error"]["Error"] == "States.Timeout"
    run = _run(client, run_id)
    assert run["status"] == "failed"
    assert run["stop_reason"] == "error"
    assert "States.Timeout" in run["error"] and "approval nobody answered" in run["error"]
    with db.transaction() as conn:
        row = conn.execute("SELECT task_token, next_action FROM runs WHERE id = %s", (run_id,)).fetchone()
    assert row == {"task_token": None, "next_action": "failed"}
    assert "Has a dog." not in client.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"]


def test_the_agent_step_lambda_calls_an_mcp_tool(
    deployed: tuple[Loop, TestClient], step_module: ModuleType, db: Database, openai_server: OpenAIServer
) -> None:
    """The step function's MCP servers as the composition root builds them from the Lambda's settings
    (stdio off, HTTP through the outbound policy; the tests' secrets box, KMS in a deployment)."""
    loop, client = deployed
    mcp = runtime.mcp_servers(step_module._runtime.settings, db, wiring.SECRETS)
    assert mcp.limits.stdio_allowed is False
    step_module._engine.tools = SandboxExecutor(db, LocalProcessSandbox(), wiring.SECRETS, mcp=mcp)
    with HttpMcpServer(token="t0ken") as server:
        body = {"server_name": "calc", "config": {"server_url": server.url, "auth_token": "t0ken"}}
        created = client.post("/v1/mcp-servers/", json=body)
        assert created.status_code == 200, created.text
        tools = client.get(f"/v1/mcp-servers/{created.json()['id']}/tools").json()
        add = next(t for t in tools if t["name"] == "add")
        agent = create_agent(client, openai_server)
        assert client.patch(f"/v1/agents/{agent['id']}/tools/attach/{add['id']}").status_code == 200
        openai_server.push(call("add", a=20, b=22, request_heartbeat=True), call("send_message", message="42"))
        out = say(client, agent["id"], "add them")
    returns = [m for m in out["messages"] if m["message_type"] == "tool_return_message"]
    assert [(r["status"], r["tool_return"]) for r in returns] == [("success", "42")]
    assert [c["action"] for c in loop.calls] == ["step", "tools", "step", "tools"]
    mcp.pool.close()
