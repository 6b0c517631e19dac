"""OpenAI and Ollama embeddings through the real openai SDK against a local wire-protocol server,
and agents of different vector sizes side by side in one database."""

from __future__ import annotations

import json

import numpy as np
import pytest

from o.errors import InvalidInput
from o.llm.keys import StaticKeySource
from o.memory import archival
from o.memory.embeddings import Embedders, EmbeddingConfig, OpenAIWireEmbedder
from o.store.db import Database
from tests.integration.memory.conftest import AgentFactory
from tests.servers.fixtures import LOCAL_EMBEDDING_ENDPOINTS, LOOPBACK
from tests.servers.openai_server import OpenAIServer


def openai_config(server: OpenAIServer, model: str, dim: int, **extra: object) -> dict[str, object]:
    return {
        "embedding_endpoint_type": "openai",
        "embedding_endpoint": server.base_url,
        "embedding_model": model,
        "embedding_dim": dim,
        "batch_size": 3,
        **extra,
    }


# the process's embedders, with an OpenAI key (the protocol server only checks that one is sent), whose
# operator lets agents name the protocol server on loopback
EMBEDDERS = Embedders(StaticKeySource({"openai": "sk-test"}), endpoints=LOCAL_EMBEDDING_ENDPOINTS, outbound=LOOPBACK)


def test_openai_embedder_batches_and_normalises(openai_server: OpenAIServer) -> None:
    embedder = EMBEDDERS.for_config(
        EmbeddingConfig.model_validate(openai_config(openai_server, "text-embedding-3-small", 256))
    )
    assert isinstance(embedder, OpenAIWireEmbedder)
    vectors = embedder.embed([f"text number {i}" for i in range(7)])
    assert vectors.shape == (7, 256) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # batch_size 3 → three requests; text-embedding-3 models are asked for the configured size
    assert [len(r["input"]) for r in openai_server.embedding_requests] == [3, 3, 1]
    assert {r["dimensions"] for r in openai_server.embedding_requests} == {256}


def test_ollama_speaks_the_same_wire(openai_server: OpenAIServer) -> None:
    origin = openai_server.base_url.removesuffix("/v1")
    config = EmbeddingConfig(
        embedding_endpoint_type="ollama",
        embedding_endpoint=origin,
        embedding_model="nomic-embed-text",
        embedding_dim=1536,
    )
    vectors = EMBEDDERS.for_config(config).embed(["hello world"])
    assert vectors.shape == (1, 1536)
    assert openai_server.embedding_requests[-1]["model"] == "nomic-embed-text"
    assert "dimensions" not in openai_server.embedding_requests[-1]


def test_provider_returning_another_size_is_a_clear_error(
    db: Database, org: str, make_agent: AgentFactory, openai_server: OpenAIServer
) -> None:
    # a model that is not text-embedding-3 gets no `dimensions`, so the server answers 1536 numbers
    agent = make_agent(openai_config(openai_server, "some-embedding-model", 768))
    with db.transaction() as conn, pytest.raises(InvalidInput, match="returned 1536-dimensional vectors") as err:
        archival.insert(conn, org, agent, "hello", embedders=EMBEDDERS)
    assert err.value.details["expected_dim"] == 768


def test_vector_sizes_coexist(db: Database, org: str, make_agent: AgentFactory, openai_server: OpenAIServer) -> None:
    facts = ["the red kite nests in the old oak", "invoices are due on the first monday", "oak furniture polish"]
    agents = {
        384: make_agent(),
        512: make_agent(openai_config(openai_server, "text-embedding-3-small", 512)),  # padded into 768
        1536: make_agent(openai_config(openai_server, "text-embedding-3-small", 1536)),
        3072: make_agent(openai_config(openai_server, "text-embedding-3-large", 3072)),  # halfvec
    }
    for agent in agents.values():
        with db.transaction() as conn:
            archival.insert(
                conn, org, agent, [archival.PassageInput(f) for f in facts], context_window=0, embedders=EMBEDDERS
            )
    for dim, agent in agents.items():
        with db.transaction() as conn:
            hits = archival.search_hits(conn, org, agent, "red kite nests", top_k=3, embedders=EMBEDDERS)
            row = conn.execute(
                "SELECT embedding_dim, embedding_384 IS NOT NULL AS a, embedding_768 IS NOT NULL AS b, "
                "embedding_1536 IS NOT NULL AS c, embedding_3072 IS NOT NULL AS d FROM passages "
                "WHERE agent_id = %s LIMIT 1",
                (agent,),
            ).fetchone()
        assert hits[0].passage.text == facts[0] and hits[0].vector_rank == 1, dim
        assert {h.passage.agent_id for h in hits} == {agent}
        assert row["embedding_dim"] == dim
        assert [row["a"], row["b"], row["c"], row["d"]] == [dim == 384, dim == 512, dim == 1536, dim == 3072]


def test_changing_the_model_of_a_filled_memory_is_refused(
    db: Database, org: str, make_agent: AgentFactory, openai_server: OpenAIServer
) -> None:
    agent = make_agent()
    with db.transaction() as conn:
        archival.insert(conn, org, agent, "stored with the local model", embedders=EMBEDDERS)
        conn.execute(
            "UPDATE agents SET embedding_config = %s WHERE id = %s",
            (json.dumps(openai_config(openai_server, "text-embedding-3-small", 1536)), agent),
        )
    with db.transaction() as conn, pytest.raises(InvalidInput, match="holds 384-dimensional embeddings") as err:
        archival.insert(conn, org, agent, "new memory", embedders=EMBEDDERS)
    assert err.value.details == {"stored_dim": 384, "configured_dim": 1536}
    # search still answers, from the words alone, instead of comparing vectors of two models
    with db.transaction() as conn:
        hits = archival.search_hits(conn, org, agent, "local model", top_k=5, embedders=EMBEDDERS)
    assert [h.passage.text for h in hits] == ["stored with the local model"] and hits[0].vector_rank is None
