from __future__ import annotations

from fastapi import APIRouter

from o import __version__
from o.api.deps import Db

router = APIRouter(tags=["health"])


@router.get("/v1/health/")
def health(db: Db) -> dict[str, str]:
    with db.transaction() as conn:
        conn.execute("SELECT 1")
    return {"status": "ok", "version": __version__}
