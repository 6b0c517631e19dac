"""The archives attached to an agent, in a Letta agent file (``.af``).

Letta's format has no place for archives or archival passages (letta-ai/agent-file lists "archival
memory passages" on its roadmap; a file has ``agents``, ``groups``, ``blocks``, ``files``, ``sources``,
``tools``, ``mcp_servers``, ``skills`` and a free-form top-level ``metadata`` object). O carries them in
that object, under ``metadata.archives``, which any reader of the format keeps or ignores::

    {"id": "archive-0", "agent_ids": ["agent-0"], "name": ..., "description": ..., "embedding_config": {...},
     "metadata": {...}, "passages": [{"text": ..., "tags": [...], "metadata": {...}, "created_at": ...}]}

``agent_ids`` are the file-local ids of the agents that have it attached. Passages travel as text
(no vectors: JSON is the wrong place for 100k of them, and the importing server may not embed the
way the exporting one did); an import creates a new archive of the organization with the same
embedding model, embeds its passages in order (each indexed with its neighbours, as a batch insert
is) and attaches it to the imported agents. O's bundle carries archives with their vectors.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from o.memory import archival, archives
from o.memory.embeddings import EmbedderSource, EmbeddingConfig
from o.memory.passage_index import PassageInput
from o.store import archives as store
from o.store.db import Conn
from o.store.pages import Page

_PAGE = 1000


class FilePassage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1, max_length=archival.MAX_TEXT_CHARS)
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime | None = None


class FileArchive(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    agent_ids: list[str] = Field(default_factory=list)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    embedding_config: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    passages: list[FilePassage] = Field(default_factory=list)


def export(conn: Conn, organization_id: str, agent_id: str, file_agent_id: str) -> list[dict[str, Any]]:
    """The archives attached to the agent, with their passages in order, as the file carries them."""
    out = []
    for i, row in enumerate(store.attached(conn, organization_id, agent_id)):
        out.append(
            {
                "id": f"archive-{i}",
                "agent_ids": [file_agent_id],
                "name": row["name"],
                "description": row["description"],
                "embedding_config": row["embedding_config"],
                "metadata": row["metadata"] or {},
                "passages": list(_passages(conn, organization_id, row["id"])),
            }
        )
    return out


def _passages(conn: Conn, organization_id: str, archive_id: str) -> Iterator[dict[str, Any]]:
    after: str | None = None
    while True:
        rows = store.list_passages(conn, organization_id, archive_id, Page(after=after, limit=_PAGE))
        for r in rows:
            yield {
                "text": r["text"],
                "tags": list(r["tags"] or []),
                "metadata": r["metadata"] or {},
                "created_at": r["created_at"].isoformat(),
            }
        if len(rows) < _PAGE:
            return
        after = rows[-1]["id"]


def import_all(
    conn: Conn,
    organization_id: str,
    entries: Sequence[FileArchive],
    agent_ids: dict[str, str],
    *,
    embedders: EmbedderSource,
) -> list[str]:
    """Create each archive (new ids) with its passages embedded anew and attach it to the imported
    agents that had it (file-local id -> new agent id); the new archives' ids."""
    created = []
    for entry in entries:
        archive = archives.create(
            conn,
            organization_id,
            entry.name,
            description=entry.description,
            embedding_config=entry.embedding_config,
            embedders=embedders,
            metadata=entry.metadata,
        )
        if entry.passages:
            items = [PassageInput(p.text, p.tags, p.metadata, p.created_at) for p in entry.passages]
            config = EmbeddingConfig.from_agent(archive.embedding_config)
            owner = archival.Owner(organization_id, archive_id=archive.id)
            archival.store_passages(conn, owner, items, config, embedders=embedders, chunk=False)
        for file_agent in entry.agent_ids:
            if file_agent in agent_ids:
                store.attach(conn, agent_ids[file_agent], archive.id)
        created.append(archive.id)
    return created
