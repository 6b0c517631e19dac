"""Input that used to reach the database or the agent loop and come back as a 500 is a 4xx JSON error
that names the field, in the shape the OpenAPI document declares (ErrorBody)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from o import runtime
from o.config import settings_from
from o.store.db import Database
from tests import wiring

SECRET = "upstream-secret-body-7f3a"


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    """A body with characters ``json=`` would refuse to encode (NaN) sent as the raw JSON text."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.request(method, path, content=text, headers={"content-type": "application/json"})


def problem(response: Any, status: int = 422) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["detail"], str) and isinstance(body["code"], str)
    return body


def locations(body: dict[str, Any]) -> list[list[Any]]:
    return [issue["loc"] for issue in body["errors"]]


@pytest.fixture
def agent(client: TestClient) -> dict[str, Any]:
    response = client.post("/v1/agents/", json={"memory_blocks": [{"label": "human", "value": "Ada"}]})
    assert response.status_code == 200, response.text
    return response.json()


# -- NUL characters ---------------------------------------------------------------------------------


def test_nul_in_a_body_string_names_the_field(client: TestClient) -> None:
    body = problem(send(client, "POST", "/v1/blocks/", {"label": "human", "value": "a\u0000b"}))
    assert ["body", "value"] in locations(body) and "NUL" in body["detail"]


def test_nul_in_a_json_key_names_its_path(client: TestClient) -> None:
    body = problem(send(client, "POST", "/v1/agents/", {"metadata": {"ok": {"bad\u0000key": 1}}}))
    assert ["body", "metadata", "ok", "bad\u0000key"] in locations(body)


def test_nul_in_a_query_parameter(client: TestClient) -> None:
    for path in ("/v1/agents/", "/v1/blocks/", "/v1/tools/", "/v1/runs/"):
        body = problem(client.get(path, params={"after": "x\u0000y"}))
        assert ["query", "after"] in locations(body), path


def test_nul_in_a_path_parameter(client: TestClient) -> None:
    body = problem(client.get("/v1/agents/agent-%00"))
    assert ["path", "agent_id"] in locations(body)


def test_nul_in_a_tool_and_in_archival_text(client: TestClient, agent: dict[str, Any]) -> None:
    source = 'def f() -> str:\n    """F."""\n    return "\u0000"\n'
    assert ["body", "source_code"] in locations(problem(send(client, "POST", "/v1/tools/", {"source_code": source})))
    path = f"/v1/agents/{agent['id']}/archival-memory"
    assert ["body", "text"] in locations(problem(send(client, "POST", path, {"text": "tea\u0000"})))


# -- numbers JSON allows Python but not Postgres ----------------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_stored_json(client: TestClient, agent: dict[str, Any], literal: str) -> None:
    created = problem(send(client, "POST", "/v1/agents/", f'{{"metadata": {{"score": {literal}}}}}'))
    assert ["body", "metadata", "score"] in locations(created) and "finite" in created["detail"]
    passage = f'{{"text": "tea", "metadata": {{"x": [1, {literal}]}}}}'
    stored = problem(send(client, "POST", f"/v1/agents/{agent['id']}/archival-memory", passage))
    assert ["body", "metadata", "x", 1] in locations(stored)
    llm = f'{{"llm_config": {{"model": "gpt-4o-mini", "model_endpoint_type": "openai", "top_p": {literal}}}}}'
    assert ["body", "llm_config", "top_p"] in locations(
        problem(send(client, "PATCH", f"/v1/agents/{agent['id']}", llm))
    )


def test_non_finite_number_in_a_typed_field(client: TestClient, agent: dict[str, Any]) -> None:
    body = problem(send(client, "POST", f"/v1/agents/{agent['id']}/feedback", '{"score": NaN, "run_id": "r"}'))
    assert ["body", "score"] in locations(body)


# -- out-of-range integers --------------------------------------------------------------------------


def test_integers_past_the_columns_range(client: TestClient, agent: dict[str, Any]) -> None:
    revisions = f"/v1/agents/{agent['id']}/revisions"
    assert ["query", "before"] in locations(problem(client.get(revisions, params={"before": 2**40})))
    assert ["path", "number"] in locations(problem(client.get(f"{revisions}/{2**40}")))
    assert ["path", "number"] in locations(problem(client.post(f"{revisions}/{2**63}/rollback")))


def test_evolution_budget_past_what_a_deadline_can_hold(client: TestClient, agent: dict[str, Any]) -> None:
    path = f"/v1/agents/{agent['id']}/evolutions"
    assert ["body", "max_seconds"] in locations(problem(send(client, "POST", path, {"max_seconds": 1.7e308})))
    assert ["body", "bake_seconds"] in locations(problem(send(client, "POST", path, {"bake_seconds": 2**62})))


# -- nulls in fields that always have a value ------------------------------------------------------


@pytest.mark.parametrize("field", ["read_only", "label", "value", "limit", "is_template", "metadata"])
def test_null_for_a_not_null_block_field(client: TestClient, agent: dict[str, Any], field: str) -> None:
    block = agent["blocks"][0]
    for path in (f"/v1/blocks/{block['id']}", f"/v1/agents/{agent['id']}/core-memory/blocks/human"):
        body = problem(send(client, "PATCH", path, {field: None}))
        assert ["body", field] in locations(body), path
    assert client.get(f"/v1/blocks/{block['id']}").json()["value"] == "Ada"


# -- model handles and endpoint types --------------------------------------------------------------


@pytest.mark.parametrize("handle", ["gpt-4o-mini", "foo/bar", "", "openai/", "bogus/gpt-4o"])
def test_unusable_model_handles(client: TestClient, agent: dict[str, Any], handle: str) -> None:
    assert ["body", "model"] in locations(problem(client.post("/v1/agents/", json={"model": handle})))
    assert ["body", "model"] in locations(problem(client.patch(f"/v1/agents/{agent['id']}", json={"model": handle})))


def test_unknown_endpoint_type_and_llm_config_handle(client: TestClient) -> None:
    bogus = {"llm_config": {"model": "m", "model_endpoint_type": "bogus"}}
    assert ["body", "llm_config", "model_endpoint_type"] in locations(problem(client.post("/v1/agents/", json=bogus)))
    foreign = {"llm_config": {"model": "m", "handle": "foo/bar"}}
    assert ["body", "llm_config", "handle"] in locations(problem(client.post("/v1/agents/", json=foreign)))
    effort = {"llm_config": {"model": "m", "reasoning_effort": "max"}}
    body = problem(client.post("/v1/agents/", json=effort))
    assert ["body", "llm_config"] in locations(body) and "reasoning_effort" in body["detail"]


def test_known_handles_still_create_agents(client: TestClient) -> None:
    for handle in ("openai/gpt-4o-mini", "anthropic/claude-3-5-haiku-latest", "ollama/llama3.2", "groq/llama-3"):
        response = client.post("/v1/agents/", json={"model": handle})
        assert response.status_code == 200, response.text
        assert response.json()["llm_config"]["handle"] == handle
    upper = client.post("/v1/agents/", json={"llm_config": {"model": "gpt-4o", "model_endpoint_type": "OpenAI"}})
    assert upper.status_code == 200 and upper.json()["llm_config"]["model_endpoint_type"] == "openai"


# -- timestamps ------------------------------------------------------------------------------------


def test_timestamp_with_an_offset_postgres_refuses_is_stored_in_utc(client: TestClient, agent: dict[str, Any]) -> None:
    path = f"/v1/agents/{agent['id']}/archival-memory"
    response = client.post(path, json={"text": "old tea", "created_at": "0178-04-30T01:06:40-17:19"})
    assert response.status_code == 200, response.text
    assert response.json()[0]["created_at"].startswith("0178-04-30T18:25:40")
    search = client.get(f"{path}/search", params={"query": "tea", "start_datetime": "2020-01-01T00:00:00-17:30"})
    assert search.status_code == 200, search.text


def test_timestamp_that_leaves_the_calendar_in_utc(client: TestClient, agent: dict[str, Any]) -> None:
    path = f"/v1/agents/{agent['id']}/archival-memory"
    body = problem(client.post(path, json={"text": "tea", "created_at": "0001-01-01T00:00:00+05:00"}))
    assert ["body", "created_at"] in locations(body)


# -- tool rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"type": "exit_loop"},
        {"type": "constrain_child_tools", "tool_name": "a", "children": 5},
        {"type": "conditional", "tool_name": "a", "child_output_mapping": ["x"]},
        {"type": "max_count_per_step", "tool_name": "a", "max_count_limit": True},
    ],
)
def test_malformed_tool_rules_are_refused_at_create_and_update(
    client: TestClient, db: Database, agent: dict[str, Any], rule: dict[str, Any]
) -> None:
    created = problem(client.post("/v1/agents/", json={"tool_rules": [rule]}))
    assert "tool_rules[0]" in created["detail"]
    updated = problem(
        client.patch(
            f"/v1/agents/{agent['id']}", json={"tool_rules": [{"type": "exit_loop", "tool_name": "send_message"}, rule]}
        )
    )
    assert "tool_rules[1]" in updated["detail"]
    assert client.get(f"/v1/agents/{agent['id']}").json()["tool_rules"] == []


# -- an embedding endpoint that fails --------------------------------------------------------------


class _Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        payload = json.dumps({"error": {"message": SECRET, "type": "invalid_request_error"}}).encode()
        self.send_response(400)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def failing_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture
def tenant_endpoints(db: Database, api_key: str) -> Iterator[TestClient]:
    """An app whose operator lets agents name endpoints on loopback (O_LLM_ALLOWED_ENDPOINTS)."""
    engine = runtime.agent_engine(settings_from({"O_LLM_ALLOWED_ENDPOINTS": "127.0.0.1"}), db)
    with TestClient(wiring.app(db, engine=engine), headers={"Authorization": f"Bearer {api_key}"}) as client:
        yield client


def _agent_embedding_at(client: TestClient, endpoint: str) -> str:
    config = {
        "embedding_endpoint_type": "openai",
        "embedding_endpoint": endpoint,
        "embedding_model": "text-embedding-3-small",
        "embedding_dim": 384,
    }
    response = client.post("/v1/agents/", json={"embedding_config": config})
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def test_archival_against_an_erroring_embedding_endpoint(tenant_endpoints: TestClient, failing_endpoint: str) -> None:
    client = tenant_endpoints
    agent_id = _agent_embedding_at(client, failing_endpoint)
    path = f"/v1/agents/{agent_id}/archival-memory"
    for response in (client.post(path, json={"text": "tea"}), client.get(f"{path}/search", params={"query": "tea"})):
        body = problem(response, 502)
        assert "openai" in body["detail"] and "400" in body["detail"]
        assert SECRET not in response.text
    assert client.get(path).json() == []


def test_archival_against_an_unreachable_embedding_endpoint(tenant_endpoints: TestClient) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), _Failing) as closed:
        port = closed.server_address[1]
    agent_id = _agent_embedding_at(tenant_endpoints, f"http://127.0.0.1:{port}/v1")
    body = problem(tenant_endpoints.post(f"/v1/agents/{agent_id}/archival-memory", json={"text": "tea"}), 502)
    assert "openai" in body["detail"]
