"""Paging for every list route: one dependency reads ``before`` / ``after`` / ``limit`` / ``order`` /
``order_by`` (and Letta's older ``ascending`` where a route accepts it) into a :class:`~o.store.pages.Page`.

Cursors are relative to the requested order (see :mod:`o.store.pages`): letta-client iterators keep
sending ``after=<last id>`` (or ``before=<first id>`` when they started with ``before``) until a page
comes back empty, so every list honours them the same way: SQL lists through :mod:`o.store.pages`,
short in-memory lists (an agent's blocks or tools) through :func:`slice_page`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query

from o.errors import InvalidInput
from o.store.pages import Page

Order = Literal["asc", "desc"]
MAX_LIMIT = 1000
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]

# How a route lets the caller choose the order: ``order`` only; ``order`` or Letta's older
# ``ascending`` flag (which wins when given); or the flag alone (Letta's passages list).
Sorting = Literal["order", "order_or_ascending", "ascending"]

T = TypeVar("T", bound=dict[str, Any])

# Every list is sorted by creation time unless the route allows another column.
CREATED_AT = "created_at"


def _sorted_by(dependency: Callable[..., Awaitable[Page]], sortable: tuple[str, ...]) -> Callable[..., Awaitable[Page]]:
    """``dependency`` with its ``order_by`` parameter typed as the literal columns of this route, so
    FastAPI refuses any other with a 422 naming ``order_by`` and the OpenAPI document lists them."""
    signature = inspect.signature(dependency)
    parameters = [
        p.replace(annotation=Literal.__getitem__(sortable)) if p.name == "order_by" else p
        for p in signature.parameters.values()
    ]
    dependency.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return dependency


def _key(order_by: str) -> str | None:
    """The Page's sort column: None keeps the list's own creation-order key (e.g. messages' sequence)."""
    return None if order_by == CREATED_AT else order_by


def _order_of(ascending: bool) -> Order:
    return "asc" if ascending else "desc"


def paging(
    *,
    default_limit: int = 50,
    default_order: Order = "asc",
    sorting: Sorting = "order",
    sortable: tuple[str, ...] = (CREATED_AT,),
) -> Callable[..., Awaitable[Page]]:
    """The dependency for one list route (``Depends(paging(...))``), with that route's defaults and
    the columns it may be sorted by (``sortable``, the values of ``order_by``).

    A coroutine, so FastAPI calls it on the event loop rather than hopping to the thread pool.
    """

    async def by_order(
        before: str | None = None,
        after: str | None = None,
        limit: Limit = default_limit,
        order: Order = default_order,
        order_by: str = CREATED_AT,
    ) -> Page:
        return Page(before=before, after=after, limit=limit, order=order, order_by=_key(order_by))

    async def by_order_or_ascending(
        before: str | None = None,
        after: str | None = None,
        limit: Limit = default_limit,
        order: Order = default_order,
        ascending: bool | None = None,
        order_by: str = CREATED_AT,
    ) -> Page:
        chosen = order if ascending is None else _order_of(ascending)
        return Page(before=before, after=after, limit=limit, order=chosen, order_by=_key(order_by))

    async def by_ascending(
        before: str | None = None,
        after: str | None = None,
        limit: Limit = default_limit,
        ascending: bool = default_order == "asc",
    ) -> Page:
        return Page(before=before, after=after, limit=limit, order=_order_of(ascending))

    variants: dict[Sorting, Callable[..., Awaitable[Page]]] = {
        "order": _sorted_by(by_order, sortable),
        "order_or_ascending": _sorted_by(by_order_or_ascending, sortable),
        "ascending": by_ascending,
    }
    return variants[sorting]


def slice_page(items: Sequence[T], page: Page) -> list[T]:
    """One page of a short list already in memory, in list order (``asc``) or reversed (``desc``)."""
    ordered = list(items) if page.order == "asc" else list(reversed(items))
    ids = [item["id"] for item in ordered]
    for name, cursor in (("before", page.before), ("after", page.after)):
        if cursor is not None and cursor not in ids:
            raise InvalidInput(f"{name} cursor {cursor!r} does not name an item of this list")
    start = ids.index(page.after) + 1 if page.after is not None else 0
    end = ids.index(page.before) if page.before is not None else len(ordered)
    window = ordered[start:end]
    if page.before is not None and page.after is None:
        return window[-page.limit :]
    return window[: page.limit]
