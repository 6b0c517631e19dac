"""GET /v1/health/: the service answers and its database is reachable (503 with Retry-After while it is not)."""

from __future__ import annotations

from fastapi import APIRouter

from o import __version__
from o.api.deps import Db

router = APIRouter(tags=["health"])


@router.get("/v1/health/")
def health(db: Db) -> dict[str, str]:
    db.ping()
    return {"status": "ok", "version": __version__}
