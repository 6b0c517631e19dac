"""The offline embedder and the pure helpers of the memory engine."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from o.errors import InvalidInput
from o.memory.archival import parse_time
from o.memory.embeddings import LOCAL_EMBEDDERS, EmbeddingConfig, local_embedder, local_model_files
from o.memory.passage_index import chunk_text, with_context
from o.store.passages import vector_literal, vector_type, vector_width

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
]
# Cosine similarities of SENTENCES[0] with each sentence, from the fp32 PyTorch model
# (sentence-transformers all-MiniLM-L6-v2, torch 2.13 CPU), measured once outside the test suite.
TORCH_REFERENCE = [1.0, 0.7553, -0.1050, 0.2474]


def test_model_files_come_from_installed_packages() -> None:
    model, tokenizer = local_model_files()
    assert model.name == "model.onnx" and model.stat().st_size > 20_000_000
    assert tokenizer.name == "tokenizer.json"


def test_local_vectors_have_shape_and_unit_norm() -> None:
    vectors = local_embedder().embed([*SENTENCES, "", "x" * 5000])
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # the same text always gives the same vector, alone or in a batch of other lengths
    again = local_embedder().embed([SENTENCES[2]])
    assert np.allclose(again[0], vectors[2], atol=1e-5)


def test_local_similarities_match_the_torch_model() -> None:
    vectors = local_embedder().embed(SENTENCES)
    sims = vectors @ vectors[0]
    assert np.allclose(sims, TORCH_REFERENCE, atol=0.01), sims
    # ordering: the paraphrase is closest, the unrelated sentence farthest
    assert list(np.argsort(-sims)) == [0, 1, 3, 2]


def test_embedder_for_checks_the_config() -> None:
    assert LOCAL_EMBEDDERS.for_config(EmbeddingConfig.default()) is local_embedder()
    with pytest.raises(InvalidInput, match="384-dimensional"):
        LOCAL_EMBEDDERS.for_config(EmbeddingConfig(embedding_dim=768))
    with pytest.raises(InvalidInput, match="only serves"):
        LOCAL_EMBEDDERS.for_config(EmbeddingConfig(embedding_model="bge-large"))
    with pytest.raises(InvalidInput, match="unknown embedding_endpoint_type"):
        LOCAL_EMBEDDERS.for_config(EmbeddingConfig(embedding_endpoint_type="carrier-pigeon"))
    letta_style = EmbeddingConfig.from_agent(
        {
            "embedding_endpoint_type": "hugging-face",
            "embedding_model": "sentence-transformers/all-MiniLM-L6-v2",
            "embedding_dim": 384,
            "embedding_chunk_size": 300,
            "batch_size": None,
        }
    )
    assert LOCAL_EMBEDDERS.for_config(letta_style) is local_embedder()


def test_vector_columns_and_padding() -> None:
    assert [vector_width(d) for d in (256, 384, 512, 1024, 1536, 2048, 3072)] == [
        384,
        384,
        768,
        1024,
        1536,
        3072,
        3072,
    ]
    assert vector_type(3072) == "halfvec" and vector_type(1536) == "vector"
    with pytest.raises(InvalidInput, match="larger than the widest"):
        vector_width(4096)
    literal = vector_literal(np.array([0.6, 0.8]), 2)
    assert literal.startswith("[0.6,0.8,0,") and literal.count(",") == 383
    with pytest.raises(InvalidInput, match="has 3 dimensions but the agent's embedding_dim is 2"):
        vector_literal(np.ones(3), 2)
    with pytest.raises(InvalidInput, match="NaN"):
        vector_literal(np.array([np.nan, 1.0]), 2)


def test_chunking_keeps_sentences_and_every_word() -> None:
    text = " ".join(f"Sentence number {i} has exactly seven words." for i in range(30))
    chunks = chunk_text(text, 50)
    assert all(len(c.split()) <= 50 for c in chunks) and len(chunks) >= 5
    assert " ".join(chunks).split() == text.split()
    assert all(c.endswith(".") for c in chunks)
    assert chunk_text("short text", 50) == ["short text"]
    long_word_run = "word " * 120
    assert [len(c.split()) for c in chunk_text(long_word_run, 50)] == [50, 50, 20]


def test_context_mixes_neighbours_only() -> None:
    texts = ["a", "b", "c", "d", "e"]
    vectors = np.eye(5, dtype=np.float32)
    contexts, mixed = with_context(texts, vectors, 2)
    assert contexts[0] == "b\nc" and contexts[2] == "a\nb\nd\ne" and contexts[4] == "c\nd"
    assert np.allclose(np.linalg.norm(mixed, axis=1), 1.0)
    assert mixed[0, 0] > mixed[0, 1] > 0 and mixed[0, 3] == 0  # own vector dominates, d is too far
    alone, same = with_context(texts, vectors, 0)
    assert alone == [""] * 5 and np.array_equal(same, vectors)


def test_parse_time() -> None:
    assert parse_time("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01", end_of_day=True) == datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_time(None) is None
    with pytest.raises(InvalidInput, match="ISO 8601"):
        parse_time("last tuesday")
