"""The O console: a browser UI over this same API, served at ``/console`` by the app itself.

Plain ES modules and one stylesheet shipped as package data (``o/api/console/``): no JS build, no CDN,
nothing fetched at run time. The pages call the public API from the same origin with the key the user
enters (kept in the tab's sessionStorage), so the console has no powers of its own and needs no routes
beyond these static files. On AWS the API Lambda serves them through the same proxy resource.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

ASSETS = Path(__file__).parent / "console"
PREFIX = "/console"


class _Assets(StaticFiles):
    """Static files that a browser revalidates: an upgraded server's console is seen on the next load."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI) -> None:
    @app.get(PREFIX, include_in_schema=False)
    def console_root() -> RedirectResponse:
        # relative, so it works behind API Gateway's stage path as well
        return RedirectResponse("console/", status_code=308)

    app.mount(PREFIX, _Assets(directory=ASSETS, html=True), name="console")
