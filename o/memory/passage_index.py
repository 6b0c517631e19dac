"""How archival passages are cut and indexed before they are stored: long texts split into chunks, and a
sequence of passages (written by one call) indexed each with its neighbours' words and meaning."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from o.memory.embeddings import normalize
from o.store import passages as store

if TYPE_CHECKING:
    import numpy as np  # imported where used: numpy is not needed at start-up


@dataclass(frozen=True)
class PassageInput:
    text: str
    tags: Sequence[str] = ()
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}")


def chunk_text(text: str, max_words: int | None) -> list[str]:
    """Split a long text into chunks of at most ``max_words`` words, on sentence ends when possible."""
    text = text.strip()
    if not max_words or len(text.split()) <= max_words:
        return [text]
    chunks: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        while len(words) > max_words:  # one sentence longer than a chunk
            if current:
                chunks.append(" ".join(current))
                current = []
            chunks.append(" ".join(words[:max_words]))
            words = words[max_words:]
        if len(current) + len(words) > max_words and current:
            chunks.append(" ".join(current))
            current = []
        current.extend(words)
    if current:
        chunks.append(" ".join(current))
    return chunks


def with_context(texts: Sequence[str], vectors: np.ndarray, window: int) -> tuple[list[str], np.ndarray]:
    """Context text and context-mixed vectors: each item plus its ``window`` neighbours each side."""
    if window <= 0 or len(texts) < 2:
        return ["" for _ in texts], vectors
    contexts: list[str] = []
    mixed = vectors.copy()
    for i in range(len(texts)):
        neighbours = [j for j in range(i - window, i + window + 1) if 0 <= j < len(texts) and j != i]
        contexts.append("\n".join(texts[j] for j in neighbours))
        if neighbours:
            mixed[i] = vectors[i] + store.CONTEXT_WEIGHT * vectors[neighbours].sum(axis=0)
    return contexts, normalize(mixed)


def split(items: Sequence[PassageInput], max_words: int | None, *, chunk: bool = True) -> list[PassageInput]:
    """Each item as the passages it is stored as: its chunks of at most ``max_words`` words (or the
    text as given when ``chunk`` is off), numbered in their metadata when there are several."""
    pieces: list[PassageInput] = []
    for item in items:
        parts = chunk_text(item.text, max_words) if chunk else [item.text]
        for index, part in enumerate(parts):
            meta = dict(item.metadata)
            if len(parts) > 1:
                meta.setdefault("chunk_index", index)
                meta.setdefault("chunk_count", len(parts))
            pieces.append(PassageInput(part, item.tags, meta, item.created_at))
    return pieces
