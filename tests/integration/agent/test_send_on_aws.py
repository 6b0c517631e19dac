"""Sending on AWS (the agent loop in the state machine, under moto): a synchronous send answers before
API Gateway's limit with the run to follow, in a shape Letta's SDK accepts, and a streamed run is driven
in the process serving its stream (live tokens) with the state machine taking over what is left."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from letta_client import Letta
from letta_client.types.agents.letta_response import LettaResponse

from o.agent.engine import Engine
from o.store import runs as run_store
from o.store.db import Database
from tests import wiring
from tests.integration.agent.conftest import create_agent, make_engine
from tests.integration.agent.test_state_machine import aws, handler_module  # noqa: F401  (fixtures)
from tests.integration.conftest import new_org_key
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, call


def _executions(aws: dict[str, Any]) -> list[dict[str, Any]]:  # noqa: F811
    return list(aws["sfn"].list_executions(stateMachineArn=aws["machine"])["executions"])


def _until(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@contextmanager
def _serving(db: Database, aws: dict[str, Any], **settings: Any) -> Iterator[tuple[httpx.Client, str]]:  # noqa: F811
    """The API over HTTP with runs going through the state machine and these agent settings."""
    engine: Engine = make_engine(db, sfn=aws["sfn"], state_machine_arn=aws["machine"], **settings)
    app = wiring.app(db, engine=engine)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _until(lambda: server.started, timeout=10)
    key = new_org_key(db)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            yield client, key
    finally:
        server.should_exit = True
        thread.join(5)


@pytest.fixture
def on_aws(aws: dict[str, Any], db: Database) -> Iterator[tuple[httpx.Client, str]]:  # noqa: F811
    """As the streaming function runs the API: a sync send waits 0.5 s (O_AGENT_SYNC_WAIT_S), streamed runs
    are driven here for up to 60 s (O_AGENT_STREAM_INLINE_S)."""
    with _serving(db, aws, sync_wait_s=0.5, stream_inline_s=60) as served:
        yield served


def test_the_sdk_accepts_a_send_that_outlasts_its_wait_and_follows_the_run(
    on_aws: tuple[httpx.Client, str], openai_server: OpenAIServer
) -> None:
    http, key = on_aws
    agent = create_agent(http, openai_server)
    # the model answers after 2 s: longer than the request waits
    openai_server.push(Reply(tool_calls=(ScriptedCall("send_message", {"message": "worth the wait"}),), delay_s=2.0))
    letta = Letta(base_url=str(http.base_url), api_key=key, _strict_response_validation=True)

    raw = letta.agents.messages.with_raw_response.create(agent["id"], input="hi")
    response = raw.parse()
    assert raw.http_response.status_code == 202
    assert isinstance(response, LettaResponse)
    # answered when its wait was over, while the run goes on
    assert (response.model_extra or {})["status"] in ("created", "running")
    assert not [m for m in response.messages if m.message_type == "assistant_message"]
    assert response.stop_reason.stop_reason == "max_steps"
    assert response.usage.run_ids
    run_id = response.usage.run_ids[0]
    assert raw.headers["X-Run-Id"] == run_id == (response.model_extra or {})["run_id"]

    _until(lambda: letta.runs.retrieve(run_id).status == "completed")
    run = letta.runs.retrieve(run_id)
    assert run.stop_reason == "end_turn"
    said = [m for m in letta.runs.messages.list(run_id) if m.message_type == "assistant_message"]
    assert [m.content for m in said] == ["worth the wait"]
    # sent once: the SDK did not send the message again, and the model was asked once
    users = [m for m in letta.agents.messages.list(agent["id"]) if m.message_type == "user_message"]
    assert len(users) == 1
    assert len(openai_server.requests) == 1


def _stream(http: httpx.Client, agent_id: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with http.stream("POST", f"/v1/agents/{agent_id}/messages/stream", json=body) as response:
        assert response.status_code == 200
        return [
            json.loads(line[len("data: ") :])
            for line in response.iter_lines()
            if line.startswith("data: ") and line != "data: [DONE]"
        ]


def test_a_streamed_run_is_driven_here_and_an_approval_pause_goes_on_in_the_state_machine(
    on_aws: tuple[httpx.Client, str],
    aws: dict[str, Any],  # noqa: F811
    db: Database,
    openai_server: OpenAIServer,
) -> None:
    http, _ = on_aws
    agent = create_agent(
        http, openai_server, tool_rules=[{"type": "requires_approval", "tool_name": "core_memory_append"}]
    )
    reply = "a streamed reply, written in pieces"
    openai_server.push(Reply(tool_calls=(ScriptedCall("send_message", {"message": reply}),), chunk_size=4))
    events = _stream(http, agent["id"], {"input": "hi", "stream_tokens": True})
    pieces = [e["content"] for e in events if e.get("message_type") == "assistant_message"]
    # token pieces, as the model wrote them, from a run no execution drove
    assert len(pieces) > 3 and "".join(pieces) == reply
    assert events[-2]["stop_reason"] == "end_turn"
    assert _executions(aws) == []

    # a run that pauses for an approval: the state machine takes it over and waits for the decision
    openai_server.push(call("core_memory_append", _id="call_a", label="human", content="likes tea"))
    events = _stream(http, agent["id"], {"input": "remember I like tea", "stream_tokens": True})
    requested = [e for e in events if e.get("message_type") == "approval_request_message"]
    assert requested and events[-2]["stop_reason"] == "requires_approval"
    run_id = events[-1]["run_ids"][0]
    _until(lambda: _run(http, run_id)["status"] == "running" and len(_executions(aws)) == 1)
    _until(lambda: _token_stored(db, run_id))

    # the approval goes to the waiting execution, which finishes the run
    openai_server.push(call("send_message", message="noted"))
    approval = {"messages": [{"type": "approval", "approvals": [
        {"type": "approval", "tool_call_id": "call_a", "approve": True}]}]}  # fmt: skip
    events = _stream(http, agent["id"], approval)
    assert events[-2]["stop_reason"] == "end_turn"
    assert _run(http, run_id)["status"] == "completed"
    assert len(_executions(aws)) == 1


def _run(http: httpx.Client, run_id: str) -> dict[str, Any]:
    response = http.get(f"/v1/runs/{run_id}")
    assert response.status_code == 200
    return dict(response.json())


def _token_stored(db: Database, run_id: str) -> bool:
    with db.transaction() as conn:
        run = run_store.get(conn, run_id)
    return run is not None and run.task_token is not None


def test_a_streamed_run_past_its_time_here_goes_on_in_the_state_machine(
    aws: dict[str, Any],  # noqa: F811
    db: Database,
    openai_server: OpenAIServer,
) -> None:
    # the time to drive a run here is over after its first action
    with _serving(db, aws, stream_inline_s=0.001) as (http, _):
        agent = create_agent(http, openai_server)
        openai_server.push(
            call("core_memory_append", label="human", content="likes tea", request_heartbeat=True),
            call("send_message", message="tea it is"),
        )
        events = _stream(http, agent["id"], {"input": "I like tea", "stream_tokens": True})
        # the first step's call streamed from here; the stream ends saying the turn is not over
        assert [e for e in events if e.get("message_type") == "tool_call_message"]
        assert events[-2] == {"message_type": "stop_reason", "stop_reason": "max_steps"}
        run_id = events[-1]["run_ids"][0]
        # ...and the state machine finishes the run: one execution, one reply
        _until(lambda: _run(http, run_id)["status"] == "completed")
        assert len(_executions(aws)) == 1
        said = [m for m in http.get(f"/v1/runs/{run_id}/messages").json() if m["message_type"] == "assistant_message"]
        assert [m["content"] for m in said] == ["tea it is"]
