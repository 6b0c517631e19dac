"""AWS mode under moto: the API starts the real agent-loop state machine (infra/agent_loop.py),
whose Lambda tasks are dispatched in-process to functions/agent_step/handler.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from infra.agent_loop import agent_loop_definition
from o.agent.engine import Engine
from o.agent.runner import StateMachineLauncher
from o.aws.stepfunctions import StateMachine
from o.store.db import Database
from tests import wiring
from tests.integration.agent.conftest import create_agent, make_engine, say
from tests.integration.conftest import new_org_key
from tests.lambdas import (
    ACCOUNT,
    REGION,
    Context,
    LambdaService,
    aws_credentials,
    create_function,
    fresh_handler,
    service_environment,
)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call

STEP = Context("o-agent-step", function_version="1", memory_limit_in_mb=512)


@pytest.fixture
def handler_module(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    service_environment(monkeypatch, pg_url)
    with fresh_handler("functions.agent_step.handler") as module:
        yield module


@pytest.fixture
def aws(handler_module: ModuleType, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    aws_credentials(monkeypatch)
    lambdas = LambdaService().install(monkeypatch)
    lambdas.serve("o-agent-step", handler_module.handler, STEP)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        function_arn = create_function("o-agent-step", "functions.agent_step.handler.handler")
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="agent-loop",
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/agent-loop",
            definition=json.dumps(agent_loop_definition(function_arn)),
        )["stateMachineArn"]
        # The step Lambda's engine: same database, LLM keys for the local servers, its own SFN client.
        step_engine = make_engine(db, sfn=sfn)
        handler_module._engine = step_engine
        yield {"machine": machine, "sfn": sfn, "events": lambdas.events}


@pytest.fixture
def aws_api(aws: dict[str, Any], db: Database) -> Iterator[TestClient]:
    engine: Engine = make_engine(db, sfn=aws["sfn"], state_machine_arn=aws["machine"], sync_wait_s=20)
    app = wiring.app(db, engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        yield client


def _executions(aws: dict[str, Any]) -> list[dict[str, Any]]:
    return aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"]


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_messages_run_through_the_state_machine(
    aws_api: TestClient, aws: dict[str, Any], openai_server: OpenAIServer
) -> None:
    agent = create_agent(aws_api, openai_server)
    openai_server.push(
        call("core_memory_append", label="human", content="Lives in Oslo.", request_heartbeat=True),
        call("send_message", message="Oslo, noted."),
    )
    out = say(aws_api, agent["id"], "I live in Oslo")
    assert [m["message_type"] for m in out["messages"]] == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert out["stop_reason"]["stop_reason"] == "end_turn"
    [execution] = _executions(aws)
    _wait_for(lambda: aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING")
    assert aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED"
    actions = [e["action"] for e in aws["events"]]
    assert actions == ["step", "tools", "step", "tools"]
    assert json.loads(aws["sfn"].describe_execution(executionArn=execution["executionArn"])["input"]) == {
        "run_id": out["usage"]["run_ids"][0],
        "iteration": 0,
        "conversation_id": None,
    }


def test_a_conversation_runs_through_the_state_machine(
    aws_api: TestClient, aws: dict[str, Any], openai_server: OpenAIServer
) -> None:
    """The conversation id travels with the run: in the execution's input and every step event."""
    agent = create_agent(aws_api, openai_server)
    conversation = aws_api.post("/v1/conversations/", params={"agent_id": agent["id"]}, json={}).json()["id"]
    openai_server.push(
        call("core_memory_append", label="human", content="Lives in Oslo.", request_heartbeat=True),
        call("send_message", message="Oslo, noted."),
    )
    sent = aws_api.post(
        f"/v1/conversations/{conversation}/messages",
        json={"messages": [{"role": "user", "content": "I live in Oslo"}], "streaming": False},
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["stop_reason"]["stop_reason"] == "end_turn"
    [execution] = _executions(aws)
    started_with = json.loads(aws["sfn"].describe_execution(executionArn=execution["executionArn"])["input"])
    assert started_with["conversation_id"] == conversation
    assert [(e["action"], e["conversation_id"]) for e in aws["events"]] == [
        ("step", conversation), ("tools", conversation), ("step", conversation), ("tools", conversation),
    ]  # fmt: skip
    listed = aws_api.get(f"/v1/conversations/{conversation}/messages", params={"order": "asc"}).json()
    assert listed[0]["message_type"] == "user_message"
    assert aws_api.get(f"/v1/agents/{agent['id']}/messages").json() == []


def test_approval_pauses_the_execution_until_the_api_releases_it(
    aws_api: TestClient,
    aws: dict[str, Any],
    openai_server: OpenAIServer,
) -> None:
    agent = create_agent(
        aws_api, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    openai_server.push(
        call("core_memory_append", _id="call_ok", label="human", content="Has a cat.", request_heartbeat=True)
    )
    out = say(aws_api, agent["id"], "I have a cat")
    assert out["stop_reason"]["stop_reason"] == "requires_approval"
    run_id = out["usage"]["run_ids"][0]
    db = aws_api.app.state.db

    def token_stored() -> bool:
        with db.transaction() as conn:
            row = conn.execute("SELECT task_token FROM runs WHERE id = %s", (run_id,)).fetchone()
        return bool(row and row["task_token"])

    _wait_for(token_stored)
    [execution] = _executions(aws)
    assert execution["status"] == "RUNNING"
    openai_server.push(call("send_message", message="Cat noted."))
    resumed = aws_api.post(
        f"/v1/agents/{agent['id']}/messages",
        json={
            "messages": [
                {"type": "approval", "approvals": [{"type": "approval", "tool_call_id": "call_ok", "approve": True}]}
            ]
        },
    )
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert [m["message_type"] for m in body["messages"]] == ["tool_return_message", "assistant_message"]
    _wait_for(lambda: aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING")
    assert aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED"
    assert [e["action"] for e in aws["events"]] == ["step", "await_approval", "step", "tools", "step", "tools"]
    assert aws_api.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"].endswith("Has a cat.")


def test_await_approval_after_the_decision_releases_itself(
    aws: dict[str, Any],
    handler_module: ModuleType,
    api: TestClient,
    openai_server: OpenAIServer,
    db: Database,
) -> None:
    """The race where the human answers before the state machine reaches its wait state."""
    from o.agent import runs as run_api
    from o.agent.runner import drive

    agent = create_agent(
        api, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    openai_server.push(call("core_memory_append", _id="call_r", label="human", content="x"))
    org = api.app.state.db.transaction
    with org() as conn:
        org_id = conn.execute("SELECT organization_id FROM agents WHERE id = %s", (agent["id"],)).fetchone()[
            "organization_id"
        ]
        started = run_api.start(conn, org_id, agent["id"], [run_api.InputMessage("user", "hi")], {})
    engine = handler_module._engine
    assert drive(engine.deps(), started.run.id).next == "approval"
    with db.transaction() as conn:
        run_api.approve(conn, org_id, agent["id"], [run_api.Decision(True, "call_r")])
    sent: list[dict[str, Any]] = []

    class RecordingSfn:
        def send_task_success(self, **kwargs: Any) -> None:
            sent.append(kwargs)

    engine.remote = StateMachineLauncher(db, StateMachine(None, client=RecordingSfn()))
    result = handler_module.handler(
        {"action": "await_approval", "run_id": started.run.id, "iteration": 3, "task_token": "tok-1"}, STEP
    )
    assert result["next"] == "approval"
    assert sent == [
        {
            "taskToken": "tok-1",
            "output": json.dumps({"run_id": started.run.id, "iteration": 3, "conversation_id": None, "next": "step"}),
        }
    ]


def test_bad_events_are_rejected(handler_module: ModuleType) -> None:
    with pytest.raises(ValueError):
        handler_module.handler({"action": "dance", "run_id": "run-1", "iteration": 0}, STEP)
    with pytest.raises(ValueError):
        handler_module.handler({"action": "step", "run_id": "run-1", "iteration": -1}, STEP)


def test_stream_follows_a_state_machine_run(
    aws_api: TestClient, aws: dict[str, Any], openai_server: OpenAIServer
) -> None:
    agent = create_agent(aws_api, openai_server)
    openai_server.push(
        call("conversation_search", query="x", request_heartbeat=True),
        call("send_message", message="streamed from AWS"),
    )
    with aws_api.stream(
        "POST", f"/v1/agents/{agent['id']}/messages/stream", json={"messages": [{"role": "user", "content": "hi"}]}
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    items = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert [i["message_type"] for i in items] == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    assert items[2]["content"] == "streamed from AWS"
    assert items[3]["stop_reason"] == "end_turn"
    assert len(_executions(aws)) == 1


def test_a_synchronous_request_that_outlasts_its_wait_names_the_run(
    aws: dict[str, Any],
    db: Database,
    openai_server: OpenAIServer,
) -> None:
    from tests.servers.script import Reply, ScriptedCall

    engine: Engine = make_engine(db, sfn=aws["sfn"], state_machine_arn=aws["machine"], sync_wait_s=0.2)
    app = wiring.app(db, engine=engine)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as client:
        agent = create_agent(client, openai_server)
        openai_server.push(Reply(tool_calls=(ScriptedCall("send_message", {"message": "slow"}),), delay_s=1.0))
        response = client.post(f"/v1/agents/{agent['id']}/messages", json={"input": "hi"})
        # 202, not a 5xx the SDK would retry (sending the message again); tests/integration/agent/test_send_on_aws.py
        assert response.status_code == 202, response.text
        run_id = response.json()["run_id"]
        assert response.headers["X-Run-Id"] == run_id == response.json()["usage"]["run_ids"][0]
        _wait_for(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "completed")
        messages = client.get(f"/v1/runs/{run_id}/messages").json()
        assert messages[-1]["content"] == "slow"


def test_cancelling_a_paused_run_ends_its_execution(
    aws_api: TestClient, aws: dict[str, Any], openai_server: OpenAIServer
) -> None:
    agent = create_agent(
        aws_api, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    openai_server.push(call("core_memory_append", _id="call_c", label="human", content="x"))
    out = say(aws_api, agent["id"], "go")
    run_id = out["usage"]["run_ids"][0]
    db = aws_api.app.state.db

    def token_stored() -> bool:
        with db.transaction() as conn:
            row = conn.execute("SELECT task_token FROM runs WHERE id = %s", (run_id,)).fetchone()
        return bool(row and row["task_token"])

    _wait_for(token_stored)
    cancelled = aws_api.post(f"/v1/runs/{run_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    [execution] = _executions(aws)
    _wait_for(lambda: aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] != "RUNNING")
    assert aws["sfn"].describe_execution(executionArn=execution["executionArn"])["status"] == "SUCCEEDED"
    assert [e["action"] for e in aws["events"]][-1] == "step"
