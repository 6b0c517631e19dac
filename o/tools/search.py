"""Tool search (Letta's ``tools.search``): an organization's tools ranked for a text query.

``fts`` ranks by Postgres full-text match of the tools' names, descriptions and tags; ``vector`` by
the meaning of the same text, embedded with the local model (no tool text leaves the process);
``hybrid`` fuses both rankings by reciprocal rank, as Letta's hybrid search does. Tool texts are
short and an organization's tools few, so their vectors are computed when first searched and kept
in a bounded in-process cache keyed by the text itself (a changed tool is a new key).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from o.memory.embeddings import LOCAL_EMBEDDERS, EmbedderSource, EmbeddingConfig
from o.store import tools as tool_store
from o.store.db import Conn

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

Mode = Literal["vector", "fts", "hybrid"]
# reciprocal-rank fusion constant (the usual 60): a tool's hybrid score is the sum of 1/(K + rank)
RRF_K = 60
# how many of an organization's tools a vector search compares (oldest first)
MAX_VECTOR_CANDIDATES = 2000
_CACHE_SIZE = 20_000


@dataclass(frozen=True)
class Hit:
    tool: dict[str, Any]
    combined_score: float
    embedded_text: str
    fts_rank: int | None = None
    vector_rank: int | None = None


def tool_text(tool: dict[str, Any]) -> str:
    """What a search reads of a tool: its name in words, description and tags."""
    parts = [str(tool["name"]).replace("_", " "), tool.get("description") or "", " ".join(tool.get("tags") or [])]
    return "\n".join(part for part in parts if part)


class _VectorCache:
    """Unit vectors of texts, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def embed(self, embedders: EmbedderSource, texts: list[str]) -> np.ndarray:
        """The texts' unit vectors, one row each."""
        import numpy as np

        keys = [hashlib.sha256(text.encode()).hexdigest() for text in texts]
        with self.lock:
            known = {key: self.vectors[key] for key in keys if key in self.vectors}
            for key in known:
                self.vectors.move_to_end(key)
        missing = list(dict.fromkeys(key for key in keys if key not in known))
        if missing:
            first = {key: texts[keys.index(key)] for key in missing}
            fresh = embedders.for_config(EmbeddingConfig.default()).embed(list(first.values()))
            for key, vector in zip(missing, fresh, strict=True):
                norm = float(np.linalg.norm(vector))
                known[key] = np.asarray(vector, dtype=np.float32) / (norm or 1.0)
            with self.lock:
                self.vectors.update((key, known[key]) for key in missing)
                while len(self.vectors) > self.size:
                    self.vectors.popitem(last=False)
        return np.vstack([known[key] for key in keys])


_CACHE = _VectorCache(_CACHE_SIZE)


def search(
    conn: Conn,
    organization_id: str,
    query: str | None,
    *,
    mode: Mode = "hybrid",
    tool_types: list[str] | None = None,
    tags: list[str] | None = None,
    limit: int = 50,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
) -> list[Hit]:
    """The organization's tools best matching ``query``, best first; with no query, every tool that
    passes the filters (oldest first, score 0)."""
    if not query or not query.strip():
        rows = tool_store.search_candidates(conn, organization_id, tool_types=tool_types, tags=tags, limit=limit)
        return [Hit(row, 0.0, tool_text(row)) for row in rows]
    text_ranked = (
        tool_store.search_text(conn, organization_id, query, tool_types=tool_types, tags=tags, limit=limit * 4)
        if mode != "vector"
        else []
    )
    vector_ranked = _by_meaning(conn, organization_id, query, tool_types, tags, embedders) if mode != "fts" else []
    if mode == "fts":
        return [Hit(row, float(row["fts_score"]), tool_text(row), fts_rank=i) for i, row in enumerate(text_ranked, 1)][
            :limit
        ]
    if mode == "vector":
        return [Hit(row, score, tool_text(row), vector_rank=i) for i, (row, score) in enumerate(vector_ranked, 1)][
            :limit
        ]
    return _fused(text_ranked, [row for row, _ in vector_ranked])[:limit]


def _by_meaning(
    conn: Conn,
    organization_id: str,
    query: str,
    tool_types: list[str] | None,
    tags: list[str] | None,
    embedders: EmbedderSource,
) -> list[tuple[dict[str, Any], float]]:
    rows = tool_store.search_candidates(
        conn, organization_id, tool_types=tool_types, tags=tags, limit=MAX_VECTOR_CANDIDATES
    )
    if not rows:
        return []
    vectors = _CACHE.embed(embedders, [query, *(tool_text(row) for row in rows)])
    scores = vectors[1:] @ vectors[0]
    order = sorted(range(len(rows)), key=lambda i: (-float(scores[i]), rows[i]["id"]))
    return [(rows[i], float(scores[i])) for i in order]


def _fused(text_ranked: list[dict[str, Any]], vector_ranked: list[dict[str, Any]]) -> list[Hit]:
    ranks: dict[str, dict[str, int]] = {}
    rows: dict[str, dict[str, Any]] = {}
    for kind, ranking in (("fts", text_ranked), ("vector", vector_ranked)):
        for rank, row in enumerate(ranking, 1):
            rows.setdefault(row["id"], row)
            ranks.setdefault(row["id"], {})[kind] = rank
    hits = [
        Hit(
            rows[tool_id],
            sum(1.0 / (RRF_K + rank) for rank in found.values()),
            tool_text(rows[tool_id]),
            fts_rank=found.get("fts"),
            vector_rank=found.get("vector"),
        )
        for tool_id, found in ranks.items()
    ]
    return sorted(hits, key=lambda hit: (-hit.combined_score, hit.tool["id"]))
