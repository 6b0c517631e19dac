"""Tags: GET /v1/tags/, the distinct tags the organization's agents carry, in name order."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from o.api import errors
from o.api.deps import Db, Org
from o.api.paging import paging
from o.store import tags as tag_store
from o.store.pages import Page

router = APIRouter(prefix="/v1/tags", tags=["tags"], responses=errors.responses(401))


@router.get("/", response_model=list[str])
def list_tags(
    org: Org,
    db: Db,
    page: Annotated[Page, Depends(paging(default_limit=50, default_order="asc"))],
    order_by: Literal["name"] = "name",
    name: Annotated[str | None, Query(max_length=200)] = None,
    query_text: Annotated[str | None, Query(max_length=200, description="deprecated: use name")] = None,
) -> Any:
    """Tags containing ``name`` (or the older ``query_text``), ignoring case; cursors are tag names."""
    del order_by  # the one order Letta offers
    with db.transaction() as conn:
        return tag_store.agent_tags(conn, org, page, contains=name or query_text)
