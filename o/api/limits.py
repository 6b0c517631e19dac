"""Reject oversize request bodies before the application reads them."""

from __future__ import annotations

import json
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from o.errors import OError


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives an app the body a middleware has already read, then what follows it
    (the client's disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class PayloadTooLarge(OError):
    """A streamed upload grew past its route's limit while the route was reading it."""

    status_code = 413
    code = "payload_too_large"


class BodySizeLimit:
    """Pure ASGI middleware.

    A declared Content-Length over the limit is refused at once; a body without one
    (chunked) is buffered up to the limit and replayed, so the app never sees more.

    ``uploads`` gives some paths (agent files, bundles) a larger limit of their own. Their bodies are
    never buffered here: the route streams them, and a chunked body that grows past the limit raises
    :class:`PayloadTooLarge` (a 413) in the route, which has written nothing by then.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, uploads: Mapping[str, int] | None = None, larger: str | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = {path.rstrip("/"): limit for path, limit in (uploads or {}).items()}
        # the route that takes what an upload path refuses as too large (an upload session), named in its 413
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        upload_limit = self._upload_limit(str(scope.get("path", "")).rstrip("/"))
        limit = self.max_bytes if upload_limit is None else upload_limit
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await self._reject(send, limit, self.larger if upload_limit is not None else None)
                return
            await self.app(scope, receive, send)
            return
        if upload_limit is not None:
            await self.app(scope, _counted(receive, upload_limit), send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._reject(send, self.max_bytes)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    def _upload_limit(self, path: str) -> int | None:
        """The limit of an upload path; a ``*`` in a configured path stands for one path segment."""
        if path in self.uploads:
            return self.uploads[path]
        parts = path.split("/")
        for pattern, limit in self.uploads.items():
            wanted = pattern.split("/")
            same_shape = "*" in wanted and len(wanted) == len(parts)
            if same_shape and all(w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
                return limit
        return None

    async def _reject(self, send: Send, limit: int, larger: str | None = None) -> None:
        detail = f"request body is larger than the limit of {limit} bytes"
        extra = {}
        if larger:
            detail += f"; send larger payloads through an upload session: POST {larger}"
            extra = {"upload_route": larger}
        body = json.dumps({"detail": detail, "code": "payload_too_large", **extra}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _counted(receive: Receive, limit: int) -> Receive:
    """``receive`` that raises PayloadTooLarge once the body has grown past ``limit`` bytes."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise PayloadTooLarge(f"request body is larger than the limit of {limit} bytes for this upload")
        return message

    return counted
