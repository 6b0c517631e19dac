"""The embedding config as Letta's types accept it: the local model is a Hugging Face model."""

from __future__ import annotations

from letta_client.types import EmbeddingConfig

from o.agent.lifecycle import DEFAULT_EMBEDDING_CONFIG
from o.api.schemas.agent_state import letta_embedding_config


def test_configs_stored_by_earlier_releases_show_as_hugging_face() -> None:
    for stored in ("local", "onnx", "huggingface", "LOCAL"):
        shown = letta_embedding_config({**DEFAULT_EMBEDDING_CONFIG, "embedding_endpoint_type": stored})
        assert EmbeddingConfig.model_validate(shown).embedding_endpoint_type == "hugging-face"


def test_other_endpoint_types_are_shown_as_stored() -> None:
    config = {"embedding_endpoint_type": "openai", "embedding_model": "text-embedding-3-small", "embedding_dim": 8}
    assert letta_embedding_config(config) == config
    assert EmbeddingConfig.model_validate(letta_embedding_config(DEFAULT_EMBEDDING_CONFIG))
