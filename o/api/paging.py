"""Cursor paging over short in-memory lists (an agent's blocks or tools), with the same
semantics as the SQL pages in o/store/pages.py: letta-client iterators keep sending
``after=<last id>`` until a page comes back empty, so every list must honour it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypeVar

from o.errors import InvalidInput

T = TypeVar("T", bound=dict[str, Any])


def slice_page(
    items: Sequence[T],
    *,
    before: str | None,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"] = "asc",
) -> list[T]:
    ordered = list(items) if order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    for cursor in (before, after):
        if cursor is not None and cursor not in ids:
            raise InvalidInput(f"cursor {cursor!r} does not name an item of this list")
    start = ids.index(after) + 1 if after is not None else 0
    end = ids.index(before) if before is not None else len(ordered)
    window = ordered[start:end]
    if before is not None and after is None:
        return window[-limit:]
    return window[:limit]
