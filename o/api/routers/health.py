"""GET /v1/health/: the service answers and its database is reachable (503 with Retry-After while it is not)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from o import __version__
from o.api import errors
from o.api.deps import Db

router = APIRouter(tags=["health"], responses=errors.responses(503))

UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "The database cannot be reached right now (e.g. restarting); retry after Retry-After seconds",
        "headers": {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}},
    }
}


@router.get("/v1/health/", responses=UNAVAILABLE)
def health(db: Db) -> dict[str, str]:
    db.ping()
    return {"status": "ok", "version": __version__}
