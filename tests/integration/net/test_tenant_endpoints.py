"""A tenant points an agent's model or embedding endpoint somewhere: through the real API, wired by the
composition root from the operator's settings, against a capture server on loopback.

Nothing leaves that shouldn't: the operator's key never goes with a tenant's endpoint; an endpoint the
operator does not allow is never called; an address the outbound policy refuses (after resolving the
name) is never connected to, nor reached by a redirect; and what an endpoint answers never comes back
to the caller or into the run's stored error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.config import settings_from
from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key
from tests.servers.capture import Answer, CaptureServer

OPERATOR_KEY = "sk-operator-must-stay-home"
# What an internal service answers (its "message" is what the SDKs quote in their errors): it must not
# come back through O.
INTERNAL = b'{"message": "admin console: internal-secret-7f3a9c"}'
FAST = {"O_LLM_MAX_RETRIES": "0", "O_LLM_CONNECT_TIMEOUT_S": "0.5", "O_LLM_TIMEOUT_S": "5"}


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    with CaptureServer(Answer(404, INTERNAL)) as server:
        yield server


def api(db: Database, **env: str) -> TestClient:
    """The app the composition root builds from these settings, with the operator's provider keys."""
    settings = settings_from({"OPENAI_API_KEY": OPERATOR_KEY, "ANTHROPIC_API_KEY": OPERATOR_KEY, **FAST, **env})
    app = wiring.app(db, engine=runtime.agent_engine(settings, db))
    return TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"})


def agent_on(client: TestClient, endpoint: str, provider: str = "openai", **extra: Any) -> str:
    llm = {"model": "some-model", "model_endpoint_type": provider, "model_endpoint": endpoint, "context_window": 8000}
    response = client.post("/v1/agents/", json={"name": "tenant", "llm_config": llm, **extra})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def refused(client: TestClient, endpoint: str, **extra: Any) -> str:
    """An agent on ``endpoint`` is refused when it is created (422), before any call: its error detail.
    Nothing of it is saved."""
    before = len(client.get("/v1/agents/").json())
    llm = {"model": "some-model", "model_endpoint_type": "openai", "model_endpoint": endpoint, "context_window": 8000}
    response = client.post("/v1/agents/", json={"name": "tenant", "llm_config": llm, **extra})
    assert response.status_code == 422, response.text
    assert len(client.get("/v1/agents/").json()) == before
    return str(response.json()["detail"])


def send(client: TestClient, agent_id: str) -> tuple[Any, dict[str, Any]]:
    """The failed send's response and its run."""
    response = client.post(f"/v1/agents/{agent_id}/messages", json={"input": "hi"})
    run_id = response.json()["context"]["run_id"]
    return response, client.get(f"/v1/runs/{run_id}").json()


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_tenant_endpoint_gets_no_operator_key_and_its_answer_is_not_echoed(
    db: Database, capture: CaptureServer, provider: str
) -> None:
    with api(db, O_LLM_ALLOWED_ENDPOINTS="127.0.0.1") as client:
        response, run = send(client, agent_on(client, capture.url(), provider))
    assert response.status_code == 502, response.text
    [request] = capture.requests
    assert OPERATOR_KEY not in request.header_values()
    # the caller and the stored run see the provider and the status, not the endpoint's answer
    reason = f"{provider} returned HTTP 404"
    assert reason in response.json()["detail"] and reason in run["error"]
    for seen in (response.text, run["error"]):
        assert "internal-secret" not in seen and "admin console" not in seen


def test_an_endpoint_the_operator_does_not_allow_is_never_called(db: Database, capture: CaptureServer) -> None:
    with api(db) as client:
        detail = refused(client, capture.url())
        assert "model_endpoint" in detail and "O_LLM_ALLOWED_ENDPOINTS" in detail
        # nor can an agent be moved there later
        agent_id = client.post("/v1/agents/", json={"model": "openai/gpt-4o-mini"}).json()["id"]
        llm = {"model": "m", "model_endpoint_type": "openai", "model_endpoint": capture.url(), "context_window": 8000}
        moved = client.patch(f"/v1/agents/{agent_id}", json={"llm_config": llm})
        assert moved.status_code == 422 and "O_LLM_ALLOWED_ENDPOINTS" in moved.json()["detail"]
        assert client.get(f"/v1/agents/{agent_id}").json()["llm_config"]["model"] == "gpt-4o-mini"
    assert capture.requests == []


def test_loopback_is_refused_after_resolving_the_name(db: Database, capture: CaptureServer) -> None:
    env = {"O_LLM_ALLOWED_ENDPOINTS": "localhost", "O_OUTBOUND_ALLOW_LOOPBACK": "false"}
    with api(db, **env) as client:
        response, run = send(client, agent_on(client, capture.url(host="localhost")))
    assert response.status_code == 502, response.text
    assert "loopback address" in run["error"] and "O_OUTBOUND_ALLOW_LOOPBACK" in run["error"]
    assert capture.requests == []


def test_on_aws_loopback_is_refused_by_default(db: Database, capture: CaptureServer) -> None:
    with api(db, O_RUNTIME="lambda", O_LLM_ALLOWED_ENDPOINTS="127.0.0.1") as client:
        assert "127.0.0.1 is a loopback address" in refused(client, capture.url())
    assert capture.requests == []


def test_the_metadata_service_is_refused_even_when_allowed_as_an_endpoint(db: Database) -> None:
    with api(db, O_LLM_ALLOWED_ENDPOINTS="169.254.169.254") as client:
        assert "169.254.169.254 is a link-local address" in refused(client, "http://169.254.169.254/latest/meta-data")


def test_a_redirect_to_a_refused_address_is_not_followed(db: Database) -> None:
    # 127.0.0.1 is allowed by CIDR; the rest of loopback (127.0.0.2) is not
    env = {
        "O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1",
        "O_OUTBOUND_ALLOW_LOOPBACK": "false",
        "O_OUTBOUND_ALLOW": "127.0.0.1",
    }
    with CaptureServer(Answer(200, b"{}"), host="127.0.0.2") as inside:
        target = inside.url("/v1/chat/completions")
        with CaptureServer(Answer(307, b"", headers={"location": target})) as outside, api(db, **env) as client:
            response, run = send(client, agent_on(client, outside.url()))
            assert len(outside.requests) == 1
        assert inside.requests == []
    assert response.status_code == 502 and "openai returned HTTP 307" in run["error"]


def _embedding(endpoint: str) -> dict[str, Any]:
    return {
        "embedding_endpoint_type": "openai",
        "embedding_endpoint": endpoint,
        "embedding_model": "text-embedding-3-small",
        "embedding_dim": 1536,
    }


def test_an_embedding_endpoint_error_is_a_clean_502(db: Database) -> None:
    with (
        CaptureServer(Answer(500, INTERNAL)) as capture,
        api(db, O_LLM_ALLOWED_ENDPOINTS="127.0.0.1") as client,
    ):
        agent_id = agent_on(client, "https://api.openai.com/v1", embedding_config=_embedding(capture.url()))
        response = client.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": "remember this"})
    assert response.status_code == 502, response.text
    assert "openai returned HTTP 500" in response.json()["detail"]
    assert "internal-secret" not in response.text and "admin console" not in response.text
    assert capture.requests and all(OPERATOR_KEY not in r.header_values() for r in capture.requests)


def test_an_embedding_endpoint_the_operator_does_not_allow_is_never_called(
    db: Database, capture: CaptureServer
) -> None:
    with api(db) as client:
        detail = refused(client, "https://api.openai.com/v1", embedding_config=_embedding(capture.url()))
        assert "embedding_endpoint" in detail
    assert capture.requests == []


def test_a_local_ollama_on_localhost_works_by_default_and_not_on_aws(db: Database) -> None:
    from tests.servers.openai_server import OpenAIServer
    from tests.servers.script import call

    with OpenAIServer() as ollama:
        ollama.push(call("send_message", message="hello from ollama"))
        base = f"http://localhost:{ollama.port}"  # the operator's Ollama, reached by name
        agent = {"model": "ollama/llama3.2", "context_window_limit": 8000}
        with api(db, O_LLM_OLLAMA_BASE_URL=base) as client:
            agent_id = client.post("/v1/agents/", json={"name": "local", **agent}).json()["id"]
            reply = client.post(f"/v1/agents/{agent_id}/messages", json={"input": "hi"})
            assert reply.status_code == 200, reply.text
            assert reply.json()["messages"][-1]["content"] == "hello from ollama"
        with api(db, O_LLM_OLLAMA_BASE_URL=base, O_RUNTIME="lambda") as client:
            agent_id = client.post("/v1/agents/", json={"name": "aws", **agent}).json()["id"]
            response, run = send(client, agent_id)
            assert response.status_code == 502 and "loopback address" in run["error"]
        assert len(ollama.requests) == 1
