"""Per-agent embedding models through the SDK: Letta's quickstart (``embedding`` handle), an
``embedding_config`` of another size, and the local ONNX model, side by side in one database; bad
handles, sizes and models refused by name with nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from letta_client import Letta, UnprocessableEntityError

from tests.servers.openai_server import OpenAIServer

FACTS = ["the red kite nests in the old oak", "invoices are due on the first monday", "oak furniture polish"]
BLOCKS: list[Any] = [
    {"label": "human", "value": "Name: Ada"},
    {"label": "persona", "value": "I am a careful assistant."},
]


def _search(letta: Letta, agent_id: str, query: str) -> list[str]:
    return [r.content for r in letta.agents.passages.search(agent_id, query=query, top_k=3).results]


def test_quickstart_and_sizes_side_by_side(letta: Letta, openai: OpenAIServer) -> None:
    # Letta's quickstart, as its docs write it
    quick = letta.agents.create(
        model="openai/gpt-4o-mini", embedding="openai/text-embedding-3-small", memory_blocks=BLOCKS
    )
    assert quick.embedding_config is not None
    assert (quick.embedding_config.embedding_model, quick.embedding_config.embedding_dim) == (
        "text-embedding-3-small",
        1536,
    )
    assert quick.embedding == "openai/text-embedding-3-small"
    small = letta.agents.create(
        model="openai/gpt-4o-mini",
        embedding_config={
            "embedding_endpoint_type": "openai",
            "embedding_model": "text-embedding-3-small",
            "embedding_dim": 512,
            "embedding_chunk_size": 50,
        },
    )
    local = letta.agents.create(model="openai/gpt-4o-mini", embedding="local/all-MiniLM-L6-v2")
    assert local.embedding_config is not None and local.embedding_config.embedding_dim == 384

    seen = len(openai.embedding_requests)
    for agent in (quick, small, local):
        for fact in FACTS:
            letta.agents.passages.create(agent.id, text=fact)
    sent = openai.embedding_requests[seen:]
    # the operator's endpoint embedded the two OpenAI agents' passages, each at its own size; the local
    # agent's never left the process
    assert [r.get("dimensions") for r in sent] == [1536] * 3 + [512] * 3
    assert {r["model"] for r in sent} == {"text-embedding-3-small"}

    for agent in (quick, small, local):
        assert _search(letta, agent.id, "where does the kite nest")[0] == FACTS[0]
        assert _search(letta, agent.id, "when are invoices due")[0] == FACTS[1]
        stored = letta.agents.passages.list(agent.id)
        dims = {p.embedding_config.embedding_dim for p in stored if p.embedding_config is not None}
        assert dims == {agent.embedding_config.embedding_dim if agent.embedding_config else 0}

    # embedding_chunk_size took effect: a long text is stored as chunks of at most 50 words
    long_text = " ".join(f"word{i}" for i in range(120))
    chunks = letta.agents.passages.create(small.id, text=long_text)
    assert len(chunks) == 3 and all(len(c.text.split()) <= 50 for c in chunks)


def test_bad_embeddings_are_refused_by_name(letta: Letta, http: TestClient) -> None:
    before = len(http.get("/v1/agents/").json())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"embedding": "nosuch/model"}, "unknown provider"),
        ({"embedding": "openai/text-embedding-9"}, "unknown openai embedding model"),
        ({"embedding": "no-slash"}, "provider/model"),
        (
            {
                "embedding_config": {
                    "embedding_endpoint_type": "hugging-face",
                    "embedding_model": "all-MiniLM-L6-v2",
                    "embedding_dim": 768,
                }
            },
            "384",
        ),
        (
            {
                "embedding_config": {
                    "embedding_endpoint_type": "hugging-face",
                    "embedding_model": "bge-large",
                    "embedding_dim": 1024,
                }
            },
            "bge-large",
        ),
        (
            {"embedding_config": {"embedding_endpoint_type": "openai", "embedding_model": "x", "embedding_dim": 4000}},
            "embedding_dim",
        ),
        (
            {"embedding_config": {"embedding_endpoint_type": "pinecone", "embedding_model": "x", "embedding_dim": 64}},
            "pinecone",
        ),
        # the memory blocks would be written first: nothing of the agent may remain
        ({"embedding": "openai/nope", "memory_blocks": BLOCKS}, "openai/nope"),
    ]
    for body, named in cases:
        response = http.post("/v1/agents/", json=body)
        assert response.status_code == 422, (body, response.text)
        assert named in response.text, (body, response.text)
    assert len(http.get("/v1/agents/").json()) == before
    assert not [b for b in http.get("/v1/blocks/").json() if b["value"] == "Name: Ada"]


def test_changing_the_model_of_stored_passages_is_refused(letta: Letta) -> None:
    agent = letta.agents.create(model="openai/gpt-4o-mini", embedding="openai/text-embedding-3-small")
    # before anything is stored the model may change freely
    agent = letta.agents.update(agent.id, embedding="openai/text-embedding-3-large")
    assert agent.embedding_config is not None and agent.embedding_config.embedding_dim == 3072
    letta.agents.passages.create(agent.id, text=FACTS[0])
    with pytest.raises(UnprocessableEntityError, match="3072-dimensional"):
        letta.agents.update(agent.id, embedding="local/all-MiniLM-L6-v2")
    with pytest.raises(UnprocessableEntityError, match="text-embedding-3-large"):
        letta.agents.update(agent.id, embedding="openai/text-embedding-ada-002")  # 1536: another model
    assert _search(letta, agent.id, "kite")[0] == FACTS[0]
