"""Paths answer with or without a trailing slash, in place: no redirect.

Starlette's default answers ``/v1/agents`` with a 307 to ``/v1/agents/``. Behind API Gateway the
``Location`` it builds lacks the stage (``/live``), so a client following it gets a 403 from API
Gateway; clients that don't follow redirects on POST fail outright. Letta clients use both forms.
So when no route matches, the router tries the path with the trailing slash toggled, once, and
serves that route directly.
"""

from __future__ import annotations

from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

_RETRIED = "o.slash_retried"


class SlashTolerant:
    """The router's not-found handler: the other form of the path, else the original 404."""

    def __init__(self, router: Router, not_found: ASGIApp) -> None:
        self.router = router
        self.not_found = not_found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or scope.get(_RETRIED) or path in ("", "/"):
            await self.not_found(scope, receive, send)
            return
        other = path.rstrip("/") if path.endswith("/") else path + "/"
        await self.router.app({**scope, "path": other, _RETRIED: True}, receive, send)


def tolerate_trailing_slashes(router: Router) -> None:
    router.redirect_slashes = False
    router.default = SlashTolerant(router, router.default)
