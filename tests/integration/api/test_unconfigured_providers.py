"""A model this server cannot call is refused when the agent is saved, naming what to configure;
O's own default model is not (its first send says what is missing)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from o.store.db import Database
from tests import wiring
from tests.integration.conftest import new_org_key


@pytest.fixture(scope="module")
def bare(db: Database) -> Iterator[TestClient]:
    # an operator who configured nothing: no provider keys, no Bedrock region
    app = wiring.app(db, settings=wiring.DEFAULTS)
    with TestClient(app, headers={"Authorization": f"Bearer {new_org_key(db)}"}) as c:
        yield c


@pytest.mark.parametrize(
    ("handle", "hint"),
    [
        ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
        ("openai/gpt-4o", "OPENAI_API_KEY"),
        ("groq/llama-3.1-8b-instant", "GROQ_API_KEY"),
        ("bedrock/anthropic.claude-3-haiku-20240307-v1:0", "O_LLM_BEDROCK_REGION"),
    ],
)
def test_a_chosen_model_without_its_provider_is_refused_and_nothing_is_saved(
    bare: TestClient, handle: str, hint: str
) -> None:
    before = len(bare.get("/v1/agents/").json())
    response = bare.post("/v1/agents/", json={"model": handle, "name": "unconfigured"})
    assert response.status_code == 422, response.text
    body = response.json()
    assert hint in body["detail"], body
    assert len(bare.get("/v1/agents/").json()) == before


def test_the_default_model_and_keyless_local_servers_still_create(bare: TestClient) -> None:
    default = bare.post("/v1/agents/", json={"name": "default"})
    assert default.status_code == 200, default.text
    local = bare.post("/v1/agents/", json={"model": "ollama/llama3.2"})
    assert local.status_code == 200, local.text


def test_switching_to_an_unconfigured_provider_is_refused(bare: TestClient) -> None:
    agent = bare.post("/v1/agents/", json={"model": "ollama/llama3.2"}).json()
    response = bare.patch(f"/v1/agents/{agent['id']}", json={"model": "anthropic/claude-3-5-haiku-latest"})
    assert response.status_code == 422 and "ANTHROPIC_API_KEY" in response.json()["detail"]
    assert bare.get(f"/v1/agents/{agent['id']}").json()["llm_config"]["handle"] == "ollama/llama3.2"
