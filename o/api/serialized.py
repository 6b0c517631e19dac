"""JSON already written, kept per process and keyed on the version of the rows it was written from.

A page of history or of agents is mostly the same rows request after request, and writing them was most
of those reads' CPU: decoding each row's JSON columns and timestamps, building Letta's shape, encoding
it again (for a list of agents, the AgentState of each agent with its blocks and tools' schemas; see the
README's performance section). The reads now ask Postgres for each row's version first (its ``xmin``:
the transaction that wrote that version of the row, which any UPDATE changes, cascades included) and
write only the rows whose version this process has not written yet.

Only reads outside a transaction (``Database.read``, autocommit) fill it: they see committed rows only,
so a version names one content. A transaction that read its own uncommitted row and then changed it
again would leave two contents under one ``xmin``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

# what an entry costs beyond its bytes (its key, the dict's slot): a message whose items Letta does not show
# is an empty value, and must count too
_ENTRY_OVERHEAD = 100


class SerializedCache:
    """Bytes by key, at most ``max_bytes`` of them with their keys (the oldest written are dropped first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: dict[str, bytes] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        return self._items.get(key)

    def put(self, key: str, value: bytes) -> None:
        if _cost(key, value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= _cost(key, old)
            self._items[key] = value
            self._size += _cost(key, value)
            while self._size > self.max_bytes:
                oldest = next(iter(self._items))
                self._size -= _cost(oldest, self._items.pop(oldest))

    def __len__(self) -> int:
        return len(self._items)


def _cost(key: str, value: bytes) -> int:
    return len(key) + len(value) + _ENTRY_OVERHEAD


def assembled(
    cache: SerializedCache,
    keys: Iterable[str],
    write_missing: Callable[[list[str]], dict[str, tuple[str, bytes]]],
) -> list[bytes]:
    """Each key's bytes, from the cache or written by ``write_missing``: given the keys not cached, it
    returns for each the key of the version it read (a row may have changed since its key was read: its
    newer version is the answer, cached under its own key) and that version's bytes. A key it leaves
    out (the row is gone) is left out."""
    keys = list(keys)
    found = {key: value for key in keys if (value := cache.get(key)) is not None}
    missing = [key for key in keys if key not in found]
    if missing:
        for key, (written_key, value) in write_missing(missing).items():
            cache.put(written_key, value)
            found[key] = value
    return [found[key] for key in keys if key in found]
