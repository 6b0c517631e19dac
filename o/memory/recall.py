"""Recall memory: search over an agent's whole message history (Letta's ``conversation_search``).

The same hybrid engine as archival memory (:func:`o.store.search.hybrid_search`) ranks messages.
A message is indexed after it is written: its own words, plus the words of the
``CONTEXT_WINDOW`` messages before it at a lower weight (a reply is found by the question it
answers), and the same mix for its vector. :func:`index_pending` does that for the oldest
unindexed messages; :func:`search` calls it first, so results are never stale, and the agent
loop may call it after a step to keep searches fast.

Roles that carry conversation (user, assistant, tool) are indexed; an assistant message that
spoke through ``send_message`` is indexed by the message it sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from o.errors import InvalidInput
from o.memory import archival
from o.memory.embeddings import LOCAL_EMBEDDERS, Embedder, EmbedderSource, normalize
from o.store import passages
from o.store import recall as store
from o.store import search as engine
from o.store.db import Conn

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

INDEXED_ROLES = ("user", "assistant", "tool")
SEARCHABLE_ROLES = ("user", "assistant", "tool", "system")
CONTEXT_WINDOW = 2
INDEX_BATCH = 512
DEFAULT_LIMIT = 10


def searchable_text(row: dict[str, Any]) -> str:
    """The words of a message worth finding: its text, or what it said through send_message."""
    if row["role"] not in INDEXED_ROLES:
        return ""
    text = (row.get("text") or "").strip()
    if text:
        return text
    said: list[str] = []
    for call in row.get("tool_calls") or []:
        function = call.get("function") or {}
        try:
            arguments = json.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            continue
        if isinstance(arguments, dict) and isinstance(arguments.get("message"), str):
            said.append(arguments["message"])
    return "\n".join(said).strip()


def index_pending(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    *,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    limit: int = INDEX_BATCH,
) -> int:
    """Index up to ``limit`` of the agent's unindexed messages; returns how many were indexed."""
    rows = store.pending(conn, agent_id, limit)
    if not rows:
        return 0
    config = archival.agent_embedding_config(conn, organization_id, agent_id)
    passages.vector_width(config.embedding_dim)
    earlier = store.preceding(conn, agent_id, rows[0]["seq"], INDEXED_ROLES, 4 * CONTEXT_WINDOW)
    sequence = earlier + rows
    texts = [searchable_text(r) for r in sequence]
    wanted = [i for i, t in enumerate(texts) if t]
    vectors: dict[int, np.ndarray] = {}
    if wanted:
        embedder = embedders.for_config(config)
        vectors = dict(zip(wanted, _embed(embedder, [texts[i] for i in wanted], config.embedding_dim), strict=True))
    items = [indexed_message(sequence[p], p, texts, vectors) for p in range(len(earlier), len(sequence))]
    return store.write_index(conn, items, model=config.embedding_model, dim=config.embedding_dim)


def _embed(embedder: Embedder, texts: list[str], dim: int) -> np.ndarray:
    embedded = embedder.embed(texts)
    if embedded.shape[1] != dim:
        raise InvalidInput(
            f"embedder returned {embedded.shape[1]}-dimensional vectors but the agent's embedding_dim is {dim}"
        )
    return embedded


def indexed_message(
    row: dict[str, Any], position: int, texts: Sequence[str], vectors: dict[int, np.ndarray]
) -> store.IndexedMessage:
    """What is indexed for the message at ``position`` of a sequence: its words and vector, with the
    words and vectors of the ``CONTEXT_WINDOW`` searchable messages before it at a lower weight.

    ``texts`` are the searchable texts of the sequence; ``vectors`` the embeddings of those not empty.
    """
    import numpy as np

    text = texts[position]
    if not text:
        return store.IndexedMessage(row["id"], row["text"], "", "", None)
    before = [i for i in sorted(vectors) if i < position][-CONTEXT_WINDOW:]
    mixed = vectors[position] + passages.CONTEXT_WEIGHT * sum(
        (vectors[i] for i in before), np.zeros_like(vectors[position])
    )
    return store.IndexedMessage(
        id=row["id"],
        source_text=row["text"],
        search_text=text,
        context="\n".join(texts[i] for i in before),
        embedding=normalize(mixed[None, :])[0],
    )


@dataclass(frozen=True)
class Conversation:
    """One conversation of an agent (``conversation_id`` None: the agent's own history)."""

    conversation_id: str | None


def search(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    query: str,
    *,
    roles: Sequence[str] | None = None,
    limit: int | None = None,
    start_date: str | datetime | None = None,
    end_date: str | datetime | None = None,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    within: Conversation | None = None,
) -> list[dict[str, Any]]:
    """Messages that best match ``query``, best first, as ``conversation_search`` returns them: from
    every conversation of the agent, or only ``within`` one (:class:`Conversation`).

    ``start_date``/``end_date`` are ISO dates or date-times; a bare end date includes its whole day.
    """
    limit = DEFAULT_LIMIT if limit is None else limit
    if not 1 <= limit <= archival.MAX_TOP_K:
        raise InvalidInput(f"limit must be between 1 and {archival.MAX_TOP_K}")
    if not query or not query.strip():
        raise InvalidInput("query must not be empty")
    unknown = sorted(set(roles or ()) - set(SEARCHABLE_ROLES))
    if unknown:
        raise InvalidInput(f"unknown roles {unknown}; use {list(SEARCHABLE_ROLES)}")
    created_from, created_to = archival.time_range(start_date, end_date)
    filters = engine.SearchFilters(
        created_from=created_from,
        created_to=created_to,
        roles=tuple(roles or ()),
        conversation_ids=(within.conversation_id,) if within and within.conversation_id else (),
        own_history=within is not None and within.conversation_id is None,
        originals_only=within is None,
    )
    config = archival.agent_embedding_config(conn, organization_id, agent_id)
    embedder = embedders.for_config(config)
    # Index what the loop wrote since the last search, a bounded amount per call.
    index_pending(conn, organization_id, agent_id, embedders=embedders)
    spec = engine.SearchSpec(
        table="messages",
        corpus="recall",
        organization_id=organization_id,
        agent_id=agent_id,
        columns=store.MESSAGE_COLUMNS,
        filters=filters,
        model=config.embedding_model,
        dim=config.embedding_dim,
        query_vector=embedder.embed([query])[0],
    )
    rows = engine.hybrid_search(conn, spec, query, top_k=limit)
    return [
        {
            "id": r["id"],
            "timestamp": r["created_at"].isoformat(),
            "role": r["role"],
            "content": searchable_text(r) or r["text"],
            "score": round(float(r["score"]), 6),
            # which conversation of the agent said it (None: the agent's own history)
            "conversation_id": r["conversation_id"],
        }
        for r in rows
    ]
