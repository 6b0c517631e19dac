"""Archives: shared stores of archival passages that agents attach (Letta's ``archives``).

An archive holds its passages once, however many agents attach it; an agent's archival search
(its ``archival_memory_search`` tool, the API's search) covers its own passages and every archive
attached to it in one ranking (:func:`o.memory.archival.search_hits`).

Each archive has one embedding model, fixed when it is created. Attaching an archive whose model
differs from the agent's is allowed: the search embeds the query with each archive's model too.
Passages are written as the agent's are (:func:`o.memory.archival.store_passages`): a batch is a
sequence, each passage indexed with its neighbours' words and meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from o.errors import InvalidInput, NotFound
from o.ids import new_id
from o.memory import archival
from o.memory.embeddings import LOCAL_DIM, LOCAL_EMBEDDERS, LOCAL_MODEL, EmbedderSource, EmbeddingConfig
from o.store import agents as agent_store
from o.store import archives as store
from o.store import passages as passage_store
from o.store.db import Conn
from o.store.pages import Page

# The local ONNX model, as an agent created without an embedding gets it.
DEFAULT_EMBEDDING_CONFIG: dict[str, Any] = {
    "embedding_endpoint_type": "hugging-face",
    "embedding_model": LOCAL_MODEL,
    "embedding_dim": LOCAL_DIM,
    "embedding_chunk_size": 300,
}
# Most passages, and characters in all, one batch insert takes: each passage is embedded in the request,
# so a batch costs at most what one long archival insert does (a longer sequence: several calls).
MAX_BATCH = 100
MAX_BATCH_CHARS = archival.MAX_TEXT_CHARS


@dataclass(frozen=True)
class Archive:
    id: str
    organization_id: str
    name: str
    description: str | None
    embedding_config: dict[str, Any]
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Archive:
        return cls(
            id=row["id"],
            organization_id=row["organization_id"],
            name=row["name"],
            description=row["description"],
            embedding_config=dict(row["embedding_config"]),
            metadata=dict(row["metadata"] or {}),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )


def create(
    conn: Conn,
    organization_id: str,
    name: str,
    *,
    description: str | None = None,
    embedding_config: dict[str, Any] | None = None,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    metadata: dict[str, Any] | None = None,
) -> Archive:
    """A new, empty archive embedding with ``embedding_config`` (the local model by default)."""
    if not name.strip():
        raise InvalidInput("an archive needs a non-empty name", field="name")
    raw = dict(embedding_config or DEFAULT_EMBEDDING_CONFIG)
    try:
        config = EmbeddingConfig.from_agent(raw)
    except ValueError as exc:
        raise InvalidInput(f"embedding_config is not usable: {exc}", field="embedding_config") from None
    passage_store.vector_width(config.embedding_dim)  # an unsupported size is refused now, not at the first insert
    embedders.check(config)  # an endpoint the operator does not allow, a model the process does not serve
    row = store.insert(
        conn,
        {
            "id": new_id("archive"),
            "organization_id": organization_id,
            "name": name,
            "description": description,
            "embedding_config": raw,
            "metadata": metadata or {},
        },
    )
    return Archive.from_row(row)


def get(conn: Conn, organization_id: str, archive_id: str, *, for_update: bool = False) -> Archive:
    row = store.get(conn, organization_id, archive_id, for_update=for_update)
    if row is None:
        raise NotFound(f"archive {archive_id} not found")
    return Archive.from_row(row)


def list_archives(
    conn: Conn, organization_id: str, page: Page, *, name: str | None = None, agent_id: str | None = None
) -> list[Archive]:
    """The organization's archives, by exact name or attached to ``agent_id`` when given."""
    if not 1 <= page.limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    rows = store.list_page(conn, organization_id, page, name=name, agent_id=agent_id)
    return [Archive.from_row(r) for r in rows]


def update(
    conn: Conn, organization_id: str, archive_id: str, *, name: str | None = None, description: str | None = None
) -> Archive:
    """A new name and/or description (what is not given is kept); the embedding model never changes."""
    changes: dict[str, Any] = {}
    if name is not None:
        if not name.strip():
            raise InvalidInput("an archive needs a non-empty name", field="name")
        changes["name"] = name
    if description is not None:
        changes["description"] = description
    if not changes:
        return get(conn, organization_id, archive_id)
    row = store.update(conn, organization_id, archive_id, changes)
    if row is None:
        raise NotFound(f"archive {archive_id} not found")
    return Archive.from_row(row)


def delete(conn: Conn, organization_id: str, archive_id: str) -> None:
    """The archive, its passages and its attachments."""
    if not store.delete(conn, organization_id, archive_id):
        raise NotFound(f"archive {archive_id} not found")


def insert_passages(
    conn: Conn,
    organization_id: str,
    archive_id: str,
    items: Sequence[archival.PassageInput],
    *,
    embedders: EmbedderSource = LOCAL_EMBEDDERS,
    context_window: int = archival.CONTEXT_WINDOW,
) -> list[archival.Passage]:
    """Embed with the archive's model and store passages in order. The passages of one call are a
    sequence (a document's sections, a conversation's turns): each is indexed with its neighbours."""
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"at most {MAX_BATCH} passages per call", field="passages")
    if sum(len(item.text) for item in items) > MAX_BATCH_CHARS:
        raise InvalidInput(f"the passages of one call may hold at most {MAX_BATCH_CHARS} characters", field="passages")
    checked = archival.passage_inputs(items, None, None, None)
    if not checked:
        raise InvalidInput("no passages given", field="passages")
    # The archive's row lock orders concurrent inserts (and a delete of the archive).
    archive = get(conn, organization_id, archive_id, for_update=True)
    config = EmbeddingConfig.from_agent(archive.embedding_config)
    owner = archival.Owner(organization_id, archive_id=archive_id)
    # stored as given, one row per passage: the caller chose the passages (and gets each back)
    return archival.store_passages(
        conn, owner, checked, config, embedders=embedders, context_window=context_window, chunk=False
    )


def delete_passage(conn: Conn, organization_id: str, archive_id: str, passage_id: str) -> None:
    get(conn, organization_id, archive_id)
    if not store.delete_passage(conn, organization_id, archive_id, passage_id):
        raise NotFound(f"passage {passage_id} not found in archive {archive_id}")


def list_passages(conn: Conn, organization_id: str, archive_id: str, page: Page) -> list[archival.Passage]:
    get(conn, organization_id, archive_id)
    if not 1 <= page.limit <= 1000:
        raise InvalidInput("limit must be between 1 and 1000")
    return [archival.Passage.from_row(r) for r in store.list_passages(conn, organization_id, archive_id, page)]


def _check_agent(conn: Conn, organization_id: str, agent_id: str) -> None:
    if agent_store.get(conn, organization_id, agent_id) is None:
        raise NotFound(f"agent {agent_id} not found")


def attach(conn: Conn, organization_id: str, agent_id: str, archive_id: str) -> Archive:
    """Make the archive part of the agent's archival search (attaching twice changes nothing)."""
    _check_agent(conn, organization_id, agent_id)
    archive = get(conn, organization_id, archive_id)
    store.attach(conn, agent_id, archive_id)
    return archive


def detach(conn: Conn, organization_id: str, agent_id: str, archive_id: str) -> Archive:
    """Take the archive out of the agent's archival search; its passages stay in the archive."""
    _check_agent(conn, organization_id, agent_id)
    archive = get(conn, organization_id, archive_id)
    store.detach(conn, agent_id, archive_id)
    return archive
