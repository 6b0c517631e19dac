"""Archival memory: an agent's long-term store of passages, searched by meaning and by words.

Inserting embeds in batches (the agent's ``embedding_config.batch_size``) and writes all passages
in one statement, inside the caller's transaction. A long text is split into chunks of about
``embedding_chunk_size`` words. Passages written by one call are a sequence (a document's chunks, a
conversation session's turns): each is indexed with the words and meaning of up to
``CONTEXT_WINDOW`` neighbours on either side, at a lower weight. On LoCoMo (one session per call)
this lifts turn R@10 from .66 to .75 and session any@5 from .905 to .928 (``bench/locomo`` prints
both); pass ``context_window=0`` to index items alone.

Search is the hybrid engine of :mod:`o.store.search`; the API, the agent's
``archival_memory_search`` tool and recall search (:mod:`o.memory.recall`) all go through it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, TypedDict, Unpack, cast

from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory.embedding_call import embed_texts
from o.memory.embeddings import LOCAL_EMBEDDERS, Embedder, EmbedderSource, EmbeddingConfig
from o.memory.passage_index import PassageInput, split, with_context
from o.store import agents as agent_store
from o.store import archives as archive_store
from o.store import passages as store
from o.store import search as engine
from o.store.db import Conn
from o.store.filters import TagMatch
from o.store.pages import Page

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up

CONTEXT_WINDOW = 2
DEFAULT_TOP_K = 10
MAX_TOP_K = 1000
MAX_TEXT_CHARS = 200_000


@dataclass(frozen=True)
class Passage:
    id: str
    organization_id: str
    # the agent whose own passage this is, or else the archive that holds it
    agent_id: str | None
    archive_id: str | None
    text: str
    tags: list[str]
    metadata: dict[str, Any]
    embedding_model: str | None
    embedding_dim: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Passage:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            agent_id=row["agent_id"],
            archive_id=row.get("archive_id"),
            text=row["text"],
            tags=list(row["tags"] or []),
            metadata=dict(row["metadata"] or {}),
            embedding_model=row["embedding_model"],
            embedding_dim=row["embedding_dim"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


@dataclass(frozen=True)
class SearchHit:
    passage: Passage
    score: float
    lexical_rank: int | None
    vector_rank: int | None
    vector_distance: float | None


def agent_embedding_config(
    conn: Conn, organization_id: str, agent_id: str, *, for_update: bool = False
) -> EmbeddingConfig:
    """The agent's embedding config; NotFound when the agent is not in the organization."""
    row = agent_store.get(conn, organization_id, agent_id, for_update=for_update)
    if row is None:
        raise NotFound(f"agent {agent_id} not found")
    try:
        return EmbeddingConfig.from_agent(row["embedding_config"])
    except ValueError as exc:
        raise InvalidInput(f"agent {agent_id} has an invalid embedding_config: {exc}") from exc


def check_compatible(conn: Conn, agent_id: str, config: EmbeddingConfig) -> None:
    """InvalidInput when the agent's stored passages were embedded by another model or size."""
    stored = store.stored_embedding(conn, agent_id)
    if stored is None:
        return
    model, dim = stored
    if dim != config.embedding_dim:
        raise InvalidInput(
            f"agent {agent_id}'s archival memory holds {dim}-dimensional embeddings ({model}), but its "
            f"embedding_config asks for {config.embedding_dim} dimensions ({config.embedding_model}); "
            "delete the passages or keep the original embedding model",
            stored_dim=dim,
            configured_dim=config.embedding_dim,
        )
    if model != config.embedding_model:
        raise InvalidInput(
            f"agent {agent_id}'s archival memory was embedded with {model!r}, but its embedding_config "
            f"names {config.embedding_model!r}; vectors of two models cannot be compared",
            stored_model=model,
            configured_model=config.embedding_model,
        )


def insert(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    content: str | Sequence[PassageInput],
    *,
    tags: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    created_at: datetime | None = None,
    context_window: int = CONTEXT_WINDOW,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    chunk: bool = True,
) -> list[Passage]:
    """Embed and store one text (chunked when long) or a sequence of passages; returns them in order.

    Runs in the caller's transaction, so a tool's insert commits with its tool-return message.
    ``tags``, ``metadata`` and ``created_at`` apply when ``content`` is a single text.
    """
    items = passage_inputs(content, tags, metadata, created_at)
    if not items:
        return []
    # The agent's row lock orders concurrent inserts, so the first one fixes the model for good.
    config = agent_embedding_config(conn, organization_id, agent_id, for_update=True)
    check_compatible(conn, agent_id, config)
    owner = Owner(organization_id, agent_id=agent_id)
    return store_passages(conn, owner, items, config, embedders=embedders, context_window=context_window, chunk=chunk)


@dataclass(frozen=True)
class Owner:
    """Whose passages these are: an agent's own, or an archive's (shared by the agents that attach it)."""

    organization_id: str
    agent_id: str | None = None
    archive_id: str | None = None


def store_passages(
    conn: Conn,
    owner: Owner,
    items: Sequence[PassageInput],
    config: EmbeddingConfig,
    *,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    context_window: int = CONTEXT_WINDOW,
    chunk: bool = True,
) -> list[Passage]:
    """Chunk, embed with ``config`` and store checked passages, each indexed with its neighbours'
    words and meaning (``context_window`` each side); the caller holds its owner's row lock."""
    embedder = embedders.for_config(config)
    _check_embedder(embedder, config)
    store.vector_width(config.embedding_dim)  # fails early for unsupported sizes

    pieces = split(items, config.embedding_chunk_size, chunk=chunk)
    texts = [p.text for p in pieces]
    contexts, mixed = with_context(texts, embed_texts(embedder, texts, config), context_window)
    rows = store.insert_many(
        conn,
        owner.organization_id,
        owner.agent_id,
        [_new_passage(p, mixed[i], contexts[i]) for i, p in enumerate(pieces)],
        model=config.embedding_model,
        dim=config.embedding_dim,
        new_id=lambda: new_id("passage"),
        archive_id=owner.archive_id,
    )
    return [Passage.from_row(r) for r in rows]


def passage_inputs(
    content: str | Sequence[PassageInput],
    tags: Sequence[str] | None,
    metadata: dict[str, Any] | None,
    created_at: datetime | None,
) -> list[PassageInput]:
    """What an insert stores, checked: one text with its tags, metadata and time, or the passages given."""
    if isinstance(content, str):
        items = [PassageInput(content, tags or (), metadata or {}, created_at)]
    else:
        items = list(content)
    for item in items:
        if not item.text or not item.text.strip():
            raise InvalidInput("a passage needs non-empty text")
        if len(item.text) > MAX_TEXT_CHARS:
            raise InvalidInput(f"a passage may hold at most {MAX_TEXT_CHARS} characters")
    return items


def _check_embedder(embedder: Embedder, config: EmbeddingConfig) -> None:
    if embedder.dim != config.embedding_dim:
        raise InvalidInput(
            f"embedder {embedder.model!r} makes {embedder.dim}-dimensional vectors but the agent's "
            f"embedding_dim is {config.embedding_dim}",
            expected_dim=config.embedding_dim,
            actual_dim=embedder.dim,
        )


def _new_passage(piece: PassageInput, embedding: np.ndarray, context: str) -> store.NewPassage:
    return store.NewPassage(
        text=piece.text,
        embedding=embedding,
        context=context,
        tags=list(dict.fromkeys(piece.tags)),
        metadata=piece.metadata,
        created_at=piece.created_at,
    )


def delete(conn: Conn, organization_id: str, agent_id: str, passage_id: str) -> None:
    agent_embedding_config(conn, organization_id, agent_id)
    if not store.delete(conn, organization_id, agent_id, passage_id):
        raise NotFound(f"passage {passage_id} not found in agent {agent_id}'s archival memory")


def get(conn: Conn, organization_id: str, agent_id: str, passage_id: str) -> Passage:
    row = store.get(conn, organization_id, agent_id, passage_id)
    if row is None:
        raise NotFound(f"passage {passage_id} not found in agent {agent_id}'s archival memory")
    return Passage.from_row(row)


def list_passages(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    *,
    after: str | None = None,
    before: str | None = None,
    limit: int = 50,
    ascending: bool = True,
    text_contains: str | None = None,
    tags: Sequence[str] | None = None,
    tag_match: TagMatch = "any",
) -> list[Passage]:
    agent_embedding_config(conn, organization_id, agent_id)
    if not 1 <= limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    rows = store.list_page(
        conn,
        organization_id,
        agent_id,
        Page(before=before, after=after, limit=limit, order="asc" if ascending else "desc"),
        text_contains=text_contains,
        tags=tags,
        tag_match=tag_match,
    )
    return [Passage.from_row(r) for r in rows]


def count(conn: Conn, organization_id: str, agent_id: str) -> int:
    return store.count(conn, organization_id, agent_id)


def parse_time(value: str | datetime | None, *, end_of_day: bool = False) -> datetime | None:
    """An ISO 8601 date or date-time (naive = UTC); a bare date ends at its last instant if asked."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = value.strip()
    try:
        if len(text) == 10:  # YYYY-MM-DD
            day = date.fromisoformat(text)
            moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
            return moment
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date or date-time") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def time_range(start: str | datetime | None, end: str | datetime | None) -> tuple[datetime | None, datetime | None]:
    """The bounds of a search's time range (either may be open); a bare end date includes its day."""
    start_at = parse_time(start)
    end_at = parse_time(end, end_of_day=True)
    if start_at is not None and end_at is not None and start_at > end_at:
        raise InvalidInput("the start of the time range is after its end")
    return start_at, end_at


def parse_tag_match(tag_match_mode: str) -> TagMatch:
    if tag_match_mode not in ("any", "all"):
        raise InvalidInput(f"tag_match_mode must be 'any' or 'all', not {tag_match_mode!r}")
    return cast(TagMatch, tag_match_mode)


def query_vector_for(
    config: EmbeddingConfig, query: str, embedders: EmbedderSource, query_vector: np.ndarray | None
) -> np.ndarray:
    import numpy as np

    if query_vector is None:
        return embed_texts(embedders.for_config(config), [query], config)[0]
    size = np.asarray(query_vector).reshape(-1).shape[0]
    if size != config.embedding_dim:
        raise InvalidInput(
            f"query embedding has {size} dimensions but the agent's embedding_dim is {config.embedding_dim}",
            expected_dim=config.embedding_dim,
            actual_dim=size,
        )
    return np.asarray(query_vector, dtype=np.float32).reshape(-1)


def search_hits(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    query: str,
    *,
    top_k: int | None = None,
    tags: Sequence[str] | None = None,
    tag_match_mode: str = "any",
    start_datetime: str | datetime | None = None,
    end_datetime: str | datetime | None = None,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    query_vector: np.ndarray | None = None,
    weights: tuple[float, float] | None = None,
    exact_max_rows: int = engine.EXACT_MAX_ROWS,
    with_archives: bool = True,
) -> list[SearchHit]:
    """The ``top_k`` passages that best match ``query`` (hybrid BM25 + vector), best first: the
    agent's own and, ``with_archives``, those of every archive attached to it, in one ranking.

    ``weights`` (lexical, vector) overrides the fusion weights; (1, 0) is BM25 alone.
    ``exact_max_rows`` is the owner size above which vectors are searched through HNSW; the graph
    holds only the rows of owners over ``EXACT_MAX_ROWS`` (schema 025), so a lower value suits a
    session that set ``o.graph_min_rows`` as low before inserting (tests).
    """
    top_k = DEFAULT_TOP_K if top_k is None else top_k
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidInput(f"top_k must be between 1 and {MAX_TOP_K}")
    if not query or not query.strip():
        raise InvalidInput("query must not be empty")
    match = parse_tag_match(tag_match_mode)
    created_from, created_to = time_range(start_datetime, end_datetime)
    filters = engine.SearchFilters(tuple(tags or ()), match, created_from, created_to)
    config = agent_embedding_config(conn, organization_id, agent_id)
    lexical_weight, vector_weight = weights or (engine.LEXICAL_WEIGHT, engine.VECTOR_WEIGHT)
    vector = query_vector_for(config, query, embedders, query_vector) if vector_weight > 0 else None
    archives = (
        archive_scopes(conn, organization_id, agent_id, query, (config, vector), embedders) if with_archives else []
    )
    spec = engine.SearchSpec(
        table="passages",
        corpus="archival",
        organization_id=organization_id,
        agent_id=agent_id,
        columns=store.PASSAGE_COLUMNS,
        filters=filters,
        model=config.embedding_model,
        dim=config.embedding_dim,
        query_vector=vector,
        lexical_weight=lexical_weight,
        vector_weight=vector_weight,
        exact_max_rows=exact_max_rows,
        archives=archives,
    )
    rows = engine.hybrid_search(conn, spec, query, top_k=top_k)
    return [
        SearchHit(
            passage=Passage.from_row(r),
            score=float(r["score"]),
            lexical_rank=r["lexical_rank"],
            vector_rank=r["vector_rank"],
            vector_distance=None if r["vector_distance"] is None else float(r["vector_distance"]),
        )
        for r in rows
    ]


def archive_scopes(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    query: str,
    agent_query: tuple[EmbeddingConfig, np.ndarray | None],
    embedders: EmbedderSource,
) -> list[engine.ArchiveScope]:
    """The archives attached to the agent, each with the query embedded by its own model: the
    agent's query vector when the archive uses the agent's model, else one embedding per model
    (none when the agent's search has no vector half)."""
    own_config, own_vector = agent_query
    vectors: dict[tuple[str, int, str | None], np.ndarray] = {}
    if own_vector is not None:
        vectors[_model_key(own_config)] = own_vector
    scopes: list[engine.ArchiveScope] = []
    for row in archive_store.attached(conn, organization_id, agent_id):
        config = EmbeddingConfig.from_agent(row["embedding_config"])
        key = _model_key(config)
        if own_vector is not None and key not in vectors:
            vectors[key] = embed_texts(embedders.for_config(config), [query], config)[0]
        vector = vectors.get(key)
        scopes.append(engine.ArchiveScope(row["id"], config.embedding_model, config.embedding_dim, vector))
    return scopes


def _model_key(config: EmbeddingConfig) -> tuple[str, int, str | None]:
    return (config.embedding_model, config.embedding_dim, config.embedding_endpoint)


class SearchOptions(TypedDict, total=False):
    """What narrows an archival search, as the tool and the API name it."""

    top_k: int | None
    tags: Sequence[str] | None
    tag_match_mode: str
    start_datetime: str | datetime | None
    end_datetime: str | datetime | None


def search(
    conn: Conn,
    organization_id: str,
    agent_id: str,
    query: str,
    *,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    **options: Unpack[SearchOptions],
) -> list[dict[str, Any]]:
    """Search results as the ``archival_memory_search`` tool and the API return them (Letta's shape)."""
    hits = search_hits(conn, organization_id, agent_id, query, embedders=embedders, **options)
    return [
        {
            "id": h.passage.id,
            "timestamp": h.passage.created_at.isoformat(),
            "content": h.passage.text,
            "tags": h.passage.tags,
            "score": round(h.score, 6),
        }
        for h in hits
    ]
