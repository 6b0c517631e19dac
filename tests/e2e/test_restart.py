"""A server killed mid-run loses nothing: the next `o serve` finishes the run from Postgres,
with exactly one copy of every message and every memory edit applied once."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.e2e.conftest import start_serve
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall, call


def wait_for(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_server_resumes_the_run_exactly_once(data_dir: Path, openai_server: OpenAIServer) -> None:  # noqa: F811
    # the agent's endpoint is the protocol server on loopback, which the operator lets agents name
    env = {"O_SLEEPTIME": "false", "OPENAI_API_KEY": "sk-test", "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1"}
    first = start_serve(data_dir, env)
    key = first.server.new_key()
    headers = {"Authorization": f"Bearer {key}"}
    llm = {
        "model": "gpt-4o-mini",
        "model_endpoint_type": "openai",
        "model_endpoint": openai_server.base_url,
        "context_window": 128000,
    }
    with httpx.Client(base_url=first.server.url, headers=headers, timeout=10) as http:
        agent = http.post(
            "/v1/agents/",
            json={
                "llm_config": llm,
                "memory_blocks": [{"label": "human", "value": "Name: Ada."}],
            },
        ).json()
        # Step 1 edits memory and asks for another step; step 2's reply never arrives: the process dies.
        openai_server.push(
            Reply(
                tool_calls=(
                    ScriptedCall(
                        "core_memory_append", {"label": "human", "content": " Likes tea.", "request_heartbeat": True}
                    ),
                )
            )
        )
        openai_server.push(
            Reply(tool_calls=(ScriptedCall("send_message", {"message": "never delivered"}),), delay_s=30)
        )
        run = http.post(
            f"/v1/agents/{agent['id']}/messages/async", json={"messages": [{"role": "user", "content": "I like tea."}]}
        ).json()
        wait_for(lambda: len(openai_server.requests) >= 2, 30, "the second LLM call")
    first.kill()

    openai_server.push(call("send_message", message="Noted: you like tea."))
    second = start_serve(data_dir, env)
    try:
        with httpx.Client(base_url=second.server.url, headers=headers, timeout=10) as http:
            wait_for(
                lambda: http.get(f"/v1/runs/{run['id']}").json()["status"] == "completed",
                60,
                "the resumed run to complete",
            )
            messages = http.get(f"/v1/agents/{agent['id']}/messages", params={"order": "asc"}).json()
            human = http.get(f"/v1/agents/{agent['id']}/core-memory/blocks/human").json()["value"]
    finally:
        second.stop()

    kinds = [(m["message_type"], m.get("content") or (m.get("tool_call") or {}).get("name")) for m in messages]
    assert kinds.count(("user_message", "I like tea.")) == 1
    assert [k for k in kinds if k[0] == "tool_call_message"] == [("tool_call_message", "core_memory_append")]
    assert len([m for m in messages if m["message_type"] == "tool_return_message"]) == 1
    assert [k for k in kinds if k[0] == "assistant_message"] == [("assistant_message", "Noted: you like tea.")]
    assert human.count("Likes tea.") == 1
