"""A threaded loopback HTTP server that the real SDKs talk to.

HTTP/1.1 with keep-alive (so an SDK reuses its connection, as with a real provider),
Nagle disabled, and chunked transfer encoding for server-sent events. With no scripted
delay the server adds well under a millisecond, which is what the benchmarks need.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from tests.servers.script import Reply, Script


class StreamCut(Exception):
    """Raised inside a handler to drop the connection mid-stream, as a failing provider would."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else {}

    def send_json(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def start_sse(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def send_sse(self, data: str, event: str | None = None) -> None:
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        payload = text.encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")

    def end_sse(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def do_GET(self) -> None:
        self.server.owner.handle_get(self)

    def do_POST(self) -> None:
        try:
            body = self._read_json()
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON"}})
            return
        try:
            self.server.owner.handle_post(self, body)
        except StreamCut:
            self.close_connection = True
            self.wfile.flush()
            self.connection.shutdown(2)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: ScriptedServer

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Keep-alive connections from cached SDK clients would otherwise pin a handler thread each
        # after the server stops; stop() hangs them up.
        self.open_sockets: set[socket.socket] = set()
        self._sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def hang_up_all(self) -> None:
        with self._sockets_lock:
            sockets = list(self.open_sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected in tests; anything else is a server bug.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class ScriptedServer:
    """Base for the provider servers: lifecycle, the script, and request bookkeeping."""

    default_models: ClassVar[tuple[str, ...]] = ()

    def __init__(self, script: Script | None = None, host: str = "127.0.0.1") -> None:
        self.script = script or Script()
        self._httpd = _HTTPServer((host, 0), Handler)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._ids = 0
        self._ids_lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self.script.requests

    def push(self, *replies: Any) -> ScriptedServer:
        self.script.push(*replies)
        return self

    def next_id(self, prefix: str) -> str:
        with self._ids_lock:
            self._ids += 1
            return f"{prefix}{self._ids:06d}"

    def start(self) -> ScriptedServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.hang_up_all()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def handle_get(self, handler: Handler) -> None:
        handler.send_json(404, {"error": {"message": f"no route GET {handler.path}"}})

    def handle_post(self, handler: Handler, body: dict[str, Any]) -> None:
        handler.send_json(404, {"error": {"message": f"no route POST {handler.path}"}})

    @staticmethod
    def wait(reply: Reply) -> None:
        if reply.delay_s:
            time.sleep(reply.delay_s)

    @staticmethod
    def pieces(text: str, size: int) -> list[str]:
        size = max(1, size)
        return [text[i : i + size] for i in range(0, len(text), size)] or [""]

    @staticmethod
    def estimate_tokens(value: Any) -> int:
        text = value if isinstance(value, str) else json.dumps(value)
        return max(1, len(text) // 4)
