"""Search across an organization's agents: Letta's ``messages.search`` and ``passages.search``.

Each agent's rows are ranked by the same hybrid engine as its own archival and recall searches
(:func:`o.store.search.hybrid_search`), with the query embedded once per embedding model, and the
agents' best rows are merged by their fused score (comparable across agents: BM25 normalised by the
best candidate plus cosine similarity). Only the caller's organization is ever read: every query is
scoped by organization id, and an ``agent_id`` of another organization is not found.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from o.errors import InvalidInput
from o.memory import archival, recall
from o.memory.embeddings import EmbedderSource
from o.store import org_rows
from o.store import passages as passage_store
from o.store import recall as recall_store
from o.store import search as engine
from o.store.db import Conn

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

SearchMode = Literal["vector", "fts", "hybrid"]
# (lexical, vector) fusion weights of each mode
WEIGHTS: dict[str, tuple[float, float]] = {"hybrid": (1.0, 1.0), "fts": (1.0, 0.0), "vector": (0.0, 1.0)}
# the roles Letta's message search results can show (a tool result has no shape there)
MESSAGE_ROLES = ("system", "user", "assistant")
MAX_LIMIT = 100


def _agents(conn: Conn, organization_id: str, agent_id: str | None) -> list[str]:
    if agent_id is None:
        return org_rows.searched_agents(conn, organization_id)
    archival.agent_embedding_config(conn, organization_id, agent_id)  # NotFound outside the organization
    return [agent_id]


def _check(limit: int, mode: str) -> tuple[float, float]:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if mode not in WEIGHTS:
        raise InvalidInput(f"search_mode must be one of {sorted(WEIGHTS)}, not {mode!r}")
    return WEIGHTS[mode]


class _Vectors:
    """The query's vector per embedding model, embedded once however many agents use the model."""

    def __init__(self, query: str, embedders: EmbedderSource) -> None:
        self.query, self.embedders, self.cache = query, embedders, {}  # type: ignore[var-annotated]

    def for_agent(self, conn: Conn, organization_id: str, agent_id: str) -> tuple[Any, np.ndarray]:
        config = archival.agent_embedding_config(conn, organization_id, agent_id)
        key = (config.embedding_model, config.embedding_dim, config.embedding_endpoint)
        if key not in self.cache:
            self.cache[key] = archival.query_vector_for(config, self.query, self.embedders, None)
        return config, self.cache[key]


def _best(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    rows.sort(key=lambda r: (-float(r["score"]), r["id"]))
    return rows[:limit]


def search_messages(
    conn: Conn,
    organization_id: str,
    query: str,
    *,
    embedders: EmbedderSource,
    agent_id: str | None = None,
    limit: int = 10,
    mode: str = "hybrid",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
    conversation_id: str | None = None,
) -> list[dict[str, Any]]:
    """The organization's messages that best match ``query``, best first (rows with ``score``); of one
    conversation when ``conversation_id`` names one (the caller checked it is the organization's)."""
    lexical_weight, vector_weight = _check(limit, mode)
    if not query.strip():
        raise InvalidInput("query must not be empty")
    created_from, created_to = archival.time_range(start, end)
    filters = engine.SearchFilters(
        created_from=created_from,
        created_to=created_to,
        roles=MESSAGE_ROLES,
        conversation_ids=(conversation_id,) if conversation_id else (),
        # across conversations, a fork's copies would be found a second time
        originals_only=not conversation_id,
    )
    vectors = _Vectors(query, embedders)
    hits: list[dict[str, Any]] = []
    for agent in _agents(conn, organization_id, agent_id):
        recall.index_pending(conn, organization_id, agent, embedders=embedders)
        config, vector = vectors.for_agent(conn, organization_id, agent) if vector_weight > 0 else (None, None)
        spec = engine.SearchSpec(
            table="messages",
            corpus="recall",
            organization_id=organization_id,
            agent_id=agent,
            columns=(*recall_store.MESSAGE_COLUMNS, "content"),
            filters=filters,
            model=config.embedding_model if config else None,
            dim=config.embedding_dim if config else None,
            query_vector=vector,
            lexical_weight=lexical_weight,
            vector_weight=vector_weight,
        )
        hits += engine.hybrid_search(conn, spec, query, top_k=limit)
    return _best(hits, limit)


def search_passages(
    conn: Conn,
    organization_id: str,
    query: str | None,
    *,
    embedders: EmbedderSource,
    agent_id: str | None = None,
    limit: int = 10,
    tags: Sequence[str] = (),
    tag_match_mode: str = "any",
    start: str | datetime | None = None,
    end: str | datetime | None = None,
) -> list[archival.SearchHit]:
    """The organization's passages that best match ``query`` (the newest that pass the filters when there is
    none), best first."""
    _check(limit, "hybrid")
    match = archival.parse_tag_match(tag_match_mode)
    created_from, created_to = archival.time_range(start, end)
    agents = _agents(conn, organization_id, agent_id)
    if not query or not query.strip():
        filters = engine.SearchFilters(tuple(tags), match, created_from, created_to)
        rows = org_rows.recent_rows(
            conn, "passages", organization_id, agents, filters, passage_store.PASSAGE_COLUMNS, limit
        )
        return [archival.SearchHit(archival.Passage.from_row(r), 0.0, None, None, None) for r in rows]
    vectors = _Vectors(query, embedders)
    hits: list[archival.SearchHit] = []
    for agent in agents:
        _, vector = vectors.for_agent(conn, organization_id, agent)
        hits += archival.search_hits(
            conn,
            organization_id,
            agent,
            query,
            top_k=min(limit, archival.MAX_TOP_K),
            tags=tags,
            tag_match_mode=match,
            start_datetime=created_from,
            end_datetime=created_to,
            embedders=embedders,
            query_vector=vector,
            # the agents' own passages: an archive attached to several agents would come back once per agent
            with_archives=False,
        )
    hits.sort(key=lambda h: (-h.score, h.passage.id))
    return hits[:limit]
