"""A local website for fetch_webpage: a real HTTP server with the pages a fetcher must cope with.

- ``/article``: an HTML page with navigation, a script, a footer and an article (the content).
- ``/plain``: text/plain; ``/data.json``: JSON.
- ``/image.png``: a content type that is no page.
- ``/huge``: ``size`` bytes of HTML sent chunked (no length declared); ``/huge-declared``: the same size
  declared in content-length.
- ``/slow``: waits ``delay`` seconds before answering.
- ``/go?to=URL``: a 302 redirect to URL (``/go?to=/article`` stays here; an absolute URL goes anywhere).
- ``/loop``: redirects to itself.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import parse_qs, urlsplit

from tests.servers.base import Handler, ScriptedServer

ARTICLE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>The Analytical Engine</title>
<style>body { color: red }</style><script>var tracker = "do not show";</script></head>
<body>
<header><a href="/">Home</a> | <a href="/about">About</a></header>
<nav><ul><li><a href="/menu">Menu item</a></li></ul></nav>
<article>
<h1>The Analytical Engine</h1>
<p>Ada Lovelace wrote the <strong>first program</strong> for it. See <a href="/notes">her notes</a>.</p>
<ul><li>Designed by Babbage</li><li>Never completed</li></ul>
<form><input name="q"><button>Search</button></form>
</article>
<footer>Copyright footer text</footer>
</body></html>"""


class WebServer(ScriptedServer):
    def __init__(self, size: int = 6 * 1024 * 1024, delay: float = 5.0) -> None:
        super().__init__()
        self.size = size
        self.delay = delay
        self.paths: list[str] = []

    def handle_get(self, handler: Handler) -> None:
        parts = urlsplit(handler.path)
        self.paths.append(parts.path)
        route = {
            "/article": lambda: _send(handler, 200, "text/html; charset=utf-8", ARTICLE),
            "/plain": lambda: _send(handler, 200, "text/plain", b"just text\n"),
            "/data.json": lambda: _send(handler, 200, "application/json", b'{"answer": 42}'),
            "/image.png": lambda: _send(handler, 200, "image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64),
            "/huge": lambda: self._huge(handler, declared=False),
            "/huge-declared": lambda: self._huge(handler, declared=True),
            "/slow": lambda: self._slow(handler),
            "/loop": lambda: _redirect(handler, "/loop"),
            "/go": lambda: _redirect(handler, parse_qs(parts.query)["to"][0]),
        }.get(parts.path)
        if route is None:
            _send(handler, 404, "text/html", b"<h1>Not found</h1>")
        else:
            route()

    def _huge(self, handler: Handler, *, declared: bool) -> None:
        handler.send_response(200)
        handler.send_header("content-type", "text/html")
        if declared:
            handler.send_header("content-length", str(self.size))
        else:
            handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        if declared:
            return  # the fetcher must refuse on the header alone; nothing is sent
        chunk = b"<p>" + b"x" * 65_530 + b"</p>"
        try:
            for _ in range(self.size // len(chunk) + 1):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the fetcher hung up at its limit, as it should
        handler.close_connection = True

    def _slow(self, handler: Handler) -> None:
        time.sleep(self.delay)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            _send(handler, 200, "text/html", b"<p>late</p>")


def _send(handler: Handler, status: int, content_type: str, body: bytes) -> None:
    handler.send_response(status)
    handler.send_header("content-type", content_type)
    handler.send_header("content-length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _redirect(handler: Handler, location: str) -> None:
    handler.send_response(302)
    handler.send_header("location", location)
    handler.send_header("content-length", "0")
    handler.end_headers()
