"""One call of an agent's embedder on a request's behalf, checked.

Whatever the endpoint's client raises (an error status, a refused connection, a timeout) becomes
:class:`EmbeddingFailed`, a 502 that names the endpoint's kind, the error's kind and its status,
never the endpoint's body; before, it reached the API as a 500. O's own errors (a wrong dimension,
a model the local embedder does not serve) pass as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from o.errors import InvalidInput, OError
from o.memory.embeddings import Embedder, EmbeddingConfig

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up


class EmbeddingFailed(OError):
    status_code = 502
    code = "embedding_error"


def embed_texts(embedder: Embedder, texts: list[str], config: EmbeddingConfig) -> np.ndarray:
    """One vector per text, each ``config.embedding_dim`` long."""
    try:
        vectors = embedder.embed(texts)
    except OError:
        raise
    except Exception as exc:  # the client's own error classes differ by provider; all of them mean the same here
        raise failure(exc, config.embedding_endpoint_type) from exc
    expected = (len(texts), config.embedding_dim)
    if vectors.shape != expected:
        raise InvalidInput(f"embedder returned vectors of shape {tuple(vectors.shape)}, expected {expected}")
    return vectors


def failure(exc: Exception, kind: str) -> EmbeddingFailed:
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) else None
    reason = type(exc).__name__ + (f" (HTTP {status})" if status is not None else "")
    return EmbeddingFailed(f"the {kind} embedding endpoint failed: {reason}", provider=kind, upstream_status=status)
