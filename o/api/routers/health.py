"""GET /v1/health/: the service answers and its database is reachable."""

from __future__ import annotations

from fastapi import APIRouter

from o import __version__
from o.api import errors
from o.api.deps import Db

router = APIRouter(tags=["health"], responses=errors.responses(503))


@router.get("/v1/health/")
def health(db: Db) -> dict[str, str]:
    db.ping()
    return {"status": "ok", "version": __version__}
