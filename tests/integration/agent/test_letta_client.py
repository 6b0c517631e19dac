"""O driven by the real letta-client SDK over HTTP: create, send, stream (with token deltas), async runs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI
from letta_client import Letta

from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import call, say


@pytest.fixture
def base_url(agent_app: FastAPI) -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = uvicorn.Server(uvicorn.Config(agent_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def letta(base_url: str, db: Database) -> Letta:
    return Letta(base_url=base_url, api_key=new_org_key(db), max_retries=0)


def _agent(letta: Letta, server: OpenAIServer) -> str:
    agent = letta.agents.create(
        name="sdk-agent",
        llm_config={
            "model": "gpt-4o-mini",
            "model_endpoint_type": "openai",
            "model_endpoint": server.base_url,
            "context_window": 128000,
        },
        memory_blocks=[{"label": "human", "value": "Unknown user.", "limit": 1000}],
    )
    return agent.id


def test_send_and_read_back_through_the_sdk(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    openai_server.push(
        call(
            "core_memory_replace",
            label="human",
            old_content="Unknown user.",
            new_content="User: Kim.",
            request_heartbeat=True,
        ),
        call("send_message", message="Hello Kim!"),
    )
    response = letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "I'm Kim"}])
    assert [m.message_type for m in response.messages] == [
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
    ]
    assert response.messages[-1].content == "Hello Kim!"
    assert response.stop_reason.stop_reason == "end_turn"
    assert response.usage.step_count == 2
    assert letta.agents.blocks.retrieve("human", agent_id=agent_id).value == "User: Kim."
    prompt = letta.agents.recompile(agent_id)
    assert "User: Kim." in prompt and "<memory_blocks>" in prompt


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_stream_with_token_deltas(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    openai_server.push(
        call("conversation_search", _text="Let me look.", query="kim", request_heartbeat=True),
        call("send_message", message='He said "hi" \u00e9 and left.'),
    )
    chunks = list(
        letta.agents.messages.stream(agent_id, messages=[{"role": "user", "content": "hi"}], stream_tokens=True)
    )
    kinds = [c.message_type for c in chunks]
    assert kinds[-2:] == ["stop_reason", "usage_statistics"]
    reasoning = "".join(c.reasoning for c in chunks if c.message_type == "reasoning_message")
    assert reasoning == "Let me look."
    said = "".join(c.content for c in chunks if c.message_type == "assistant_message")
    assert said == 'He said "hi" \u00e9 and left.'
    assert sum(1 for k in kinds if k == "assistant_message") > 1, "expected several token deltas"
    assert "tool_return_message" in kinds
    assert chunks[-2].stop_reason == "end_turn"
    assert all(body.get("stream") for body in openai_server.requests)


def test_stream_whole_messages(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    openai_server.push(say("plain answer"))
    # the SDK's current form: create(streaming=True) posts to /messages and reads SSE back
    chunks = list(letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "hi"}], streaming=True))
    assert [c.message_type for c in chunks] == ["assistant_message", "stop_reason", "usage_statistics"]
    assert chunks[0].content == "plain answer"
    assert not any(body.get("stream") for body in openai_server.requests)


def test_async_run_and_runs_api(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    openai_server.push(call("send_message", message="done in the background", _id="call_bg"))
    run = letta.agents.messages.create_async(agent_id, messages=[{"role": "user", "content": "work"}])
    assert run.status in ("created", "running", "completed")
    deadline = time.monotonic() + 10
    while letta.runs.retrieve(run.id).status != "completed" and time.monotonic() < deadline:
        time.sleep(0.02)
    done = letta.runs.retrieve(run.id)
    assert (done.status, done.stop_reason) == ("completed", "end_turn")
    messages = list(letta.runs.messages.list(run.id))
    assert [m.message_type for m in messages] == ["user_message", "assistant_message"]
    assert messages[-1].content == "done in the background"
    listed = list(letta.runs.list(agent_id=agent_id))
    assert [r.id for r in listed] == [run.id]


def test_approval_round_trip_through_the_sdk(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    letta.agents.update(agent_id, tool_rules=[{"type": "requires_approval", "tool_name": "memory_rethink"}])
    openai_server.push(
        call("memory_rethink", _id="call_sdk", label="human", new_memory="Rewritten.", request_heartbeat=True)
    )
    paused = letta.agents.messages.create(agent_id, messages=[{"role": "user", "content": "rewrite it"}])
    assert paused.stop_reason.stop_reason == "requires_approval"
    [request] = paused.messages
    assert request.message_type == "approval_request_message"
    assert request.tool_call.name == "memory_rethink" and request.tool_call.tool_call_id == "call_sdk"
    openai_server.push(call("send_message", message="Rewritten as asked."))
    resumed = letta.agents.messages.create(
        agent_id,
        messages=[
            {"type": "approval", "approvals": [{"type": "approval", "tool_call_id": "call_sdk", "approve": True}]}
        ],
    )
    assert [m.message_type for m in resumed.messages] == ["tool_return_message", "assistant_message"]
    assert resumed.messages[0].status == "success"
    assert letta.agents.blocks.retrieve("human", agent_id=agent_id).value == "Rewritten."
    cancelled = letta.agents.messages.cancel(agent_id)
    assert cancelled == {}


def test_follow_an_async_run_and_resume_after_a_seq_id(letta: Letta, openai_server: OpenAIServer) -> None:
    agent_id = _agent(letta, openai_server)
    openai_server.push(
        call("conversation_search", query="x", request_heartbeat=True),
        call("send_message", message="finished"),
    )
    run = letta.agents.messages.create_async(agent_id, messages=[{"role": "user", "content": "work"}])
    chunks = list(letta.runs.messages.stream(run.id))
    kinds = [c.message_type for c in chunks]
    assert kinds == [
        "user_message",
        "tool_call_message",
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
    # a client that saw up to the tool call resumes after it
    resumed = list(letta.runs.messages.stream(run.id, starting_after=chunks[1].seq_id))
    assert [c.message_type for c in resumed] == [
        "tool_return_message",
        "assistant_message",
        "stop_reason",
        "usage_statistics",
    ]
