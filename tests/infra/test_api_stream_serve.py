"""The streaming function's command, run as the Lambda Web Adapter runs it: ``functions/api/run.sh`` in the
task root with the function's environment (infra/api.py), on a local port. An HTTP client streams a reply
from a model that writes it over time and sees the first chunks long before the model has finished.

What the adapter and API Gateway add on AWS (the streamed invocation, the /stream base path) only AWS can
show: infra/README.md says how to check it after a deploy (infra/smoke.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra import api
from o.store.db import Database
from tests.integration.conftest import new_org_key
from tests.lambdas import LOOPBACK_OPERATOR
from tests.servers.fixtures import openai_server  # noqa: F401  (fixture)
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, ScriptedCall

ROOT = Path(__file__).resolve().parents[2]
# Nothing here may reach AWS: the run ends in this process, so the state machine is never called.
NO_AWS = {
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def streaming_function(pg_url: str, tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("O_", "AWS_"))}
    env.update(api.stream_environment())
    env.update(
        {
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_LWA_PORT": str(port),
            # run.sh starts `python3`: this interpreter
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            # what the stack gives the API functions, on the test's database
            "O_RUNTIME": "lambda",
            "O_DATABASE_URL": pg_url,
            "O_RUN_MIGRATIONS": "false",
            "O_AGENT_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:o-agent-loop",
            **LOOPBACK_OPERATOR,
            **NO_AWS,
        }
    )
    log = (tmp_path / "stream.log").open("w")
    proc = subprocess.Popen([str(ROOT / api.STREAM_HANDLER)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url + api.stream_environment()["AWS_LWA_READINESS_CHECK_PATH"], tmp_path)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _wait_ready(proc: subprocess.Popen[bytes], health: str, tmp_path: Path) -> None:
    """What the adapter does before it takes invocations: poll the readiness path."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"run.sh exited: {(tmp_path / 'stream.log').read_text()}")
        try:
            if httpx.get(health, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"run.sh did not become ready: {(tmp_path / 'stream.log').read_text()}")


def _agent(client: httpx.Client, server: OpenAIServer) -> str:
    llm = {"model": "gpt-4o-mini", "model_endpoint_type": "openai", "model_endpoint": server.base_url,
           "context_window": 128000}  # fmt: skip
    response = client.post("/v1/agents/", json={"name": "streamer", "llm_config": llm, "memory_blocks": []})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def _timed_events(client: httpx.Client, agent_id: str) -> list[tuple[float, dict[str, Any]]]:
    """The stream's events, each with the seconds since the request was sent."""
    started = time.monotonic()
    events: list[tuple[float, dict[str, Any]]] = []
    body = {"messages": [{"role": "user", "content": "tell me"}], "stream_tokens": True}
    with client.stream("POST", f"/v1/agents/{agent_id}/messages/stream", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append((time.monotonic() - started, json.loads(line[len("data: ") :])))
    return events


def test_the_streaming_entry_streams_tokens_as_the_model_writes_them(
    streaming_function: str,
    db: Database,
    openai_server: OpenAIServer,  # noqa: F811
) -> None:
    reply = "The quick brown fox jumps over the lazy dog, then naps in the warm afternoon sun. " * 2
    headers = {"Authorization": f"Bearer {new_org_key(db)}"}
    with httpx.Client(base_url=streaming_function, headers=headers, timeout=30) as client:
        agent_id = _agent(client, openai_server)
        # the first request of an execution environment loads what it needs (the embedding model); the second
        # is a warm one
        for attempt in ("cold", "warm"):
            # 8 characters per event, 50 ms apart: the model takes about 1.3 s to write the reply's arguments
            call = ScriptedCall("send_message", {"message": reply})
            openai_server.push(Reply(tool_calls=(call,), chunk_size=8, token_delay_s=0.05))
            events = _timed_events(client, agent_id)
            pieces = [(at, e) for at, e in events if e.get("message_type") == "assistant_message"]
            assert "".join(e["content"] for _, e in pieces) == reply
            first, last = pieces[0][0], pieces[-1][0]
            print(f"\nstreaming entry ({attempt}): first assistant chunk at {first:.2f} s, last at {last:.2f} s, "
                  f"{len(pieces)} chunks, stream done at {events[-1][0]:.2f} s")  # fmt: skip
            # the reply arrived in pieces while the model was writing it: the first piece came more than
            # 0.8 s (of its ~1.3 s) before the model's last one
            assert len(pieces) >= 10
            assert last - first > 0.8
            assert events[-1][1]["message_type"] == "usage_statistics"
            stop = [e for _, e in events if e.get("message_type") == "stop_reason"]
            assert stop == [{"message_type": "stop_reason", "stop_reason": "end_turn"}]
