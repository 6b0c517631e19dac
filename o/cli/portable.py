"""`o export AGENT_ID FILE` and `o import FILE`: move an agent between servers over the API (a local
`o serve` and a deployed stack, or two of either).

The server is ``--url`` (env ``LETTA_BASE_URL``, default the local `o serve`) and the key ``--key``
(env ``LETTA_API_KEY``), the names Letta's SDK reads. A bundle streams both ways: the file is written
as it arrives and sent as it is read, so neither end holds it whole. ``--format af`` writes Letta's
agent file instead; `o import` reads either (by its first byte).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from o.cli.progress import bar

DEFAULT_URL = "http://127.0.0.1:8283"
_CHUNK = 1024 * 1024
# a bundle is a sequence of msgpack bin values: its first byte is one of bin 8/16/32
_BUNDLE_FIRST_BYTES = {0xC4, 0xC5, 0xC6}


def add_parsers(sub: Any) -> None:
    p_export = sub.add_parser("export", help="export an agent to a file (O's full bundle, or --format af)")
    p_export.add_argument("agent_id")
    p_export.add_argument("file", type=Path)
    p_export.add_argument("--format", choices=("bundle", "af"), default="bundle")
    _server_flags(p_export)
    p_export.set_defaults(func=export_cmd)
    p_import = sub.add_parser("import", help="import an agent from a bundle or a Letta agent file (.af)")
    p_import.add_argument("file", type=Path)
    p_import.add_argument("--name", help="a new name for the imported agent")
    p_import.add_argument("--secrets", help='tool variables as JSON, e.g. \'{"API_KEY": "..."}\'')
    _server_flags(p_import)
    p_import.set_defaults(func=import_cmd)


def _server_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", default=os.environ.get("LETTA_BASE_URL", DEFAULT_URL), help="the server (LETTA_BASE_URL)")
    p.add_argument("--key", default=os.environ.get("LETTA_API_KEY"), help="an API key of it (LETTA_API_KEY)")


class CommandError(Exception):
    """What went wrong, said to the user (exit status 1)."""


def export_cmd(args: argparse.Namespace) -> int:
    path = "bundle" if args.format == "bundle" else "export"
    started = time.monotonic()
    partial = args.file.with_name(args.file.name + ".part")
    try:
        with _open(_request(args, "GET", f"/v1/agents/{args.agent_id}/{path}")) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length")
            with bar(f"exporting {args.agent_id}", int(length) if length else None) as advance:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    advance(len(chunk))
        partial.replace(args.file)
    except CommandError as exc:
        partial.unlink(missing_ok=True)
        return _fail(str(exc))
    size = args.file.stat().st_size
    print(f"exported {args.agent_id} to {args.file} ({_figures(size, time.monotonic() - started)})", file=sys.stderr)
    return 0


def import_cmd(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        secrets = _secrets(args.secrets)
        with args.file.open("rb") as source:
            first = source.read(1)
            source.seek(0)
            if first and first[0] in _BUNDLE_FIRST_BYTES:
                agent_id, unset = _import_bundle(args, source)
            else:
                agent_id, unset = _import_agent_file(args, source)
        if secrets:
            _patch_secrets(args, agent_id, secrets)
    except (CommandError, OSError) as exc:
        return _fail(str(exc))
    size = args.file.stat().st_size
    print(agent_id)
    print(f"imported {args.file} as {agent_id} ({_figures(size, time.monotonic() - started)})", file=sys.stderr)
    missing = sorted(set(unset) - set(secrets))
    if missing:
        print(f"tool variables to set (--secrets or PATCH): {', '.join(missing)}", file=sys.stderr)
    return 0


def _import_bundle(args: argparse.Namespace, source: BinaryIO) -> tuple[str, list[str]]:
    query = "?" + urllib.parse.urlencode({"name": args.name}) if args.name else ""
    size = os.fstat(source.fileno()).st_size
    with bar(f"importing {args.file.name}", size) as advance:
        request = _request(
            args,
            "POST",
            "/v1/agents/import-bundle" + query,
            data=_Counted(source, advance),
            headers={"Content-Type": "application/x-msgpack", "Content-Length": str(size)},
        )
        with _open(request) as response:
            result = json.load(response)
    return result["agent_id"], result.get("unset_variables", [])


class _Counted:
    """A file sent as a request body, telling the progress bar each piece read."""

    def __init__(self, source: BinaryIO, advance: Callable[[int], None]) -> None:
        self.source, self.advance = source, advance

    def read(self, size: int = -1) -> bytes:
        piece = self.source.read(size)
        self.advance(len(piece))
        return piece


def _import_agent_file(args: argparse.Namespace, source: BinaryIO) -> tuple[str, list[str]]:
    content = source.read()
    boundary = uuid.uuid4().hex
    fields = {"name": args.name} if args.name else {}
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{args.file.name}"\r\n'
        "Content-Type: application/json\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = _request(
        args,
        "POST",
        "/v1/agents/import",
        data=b"".join(parts),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with _open(request) as response:
        agent_id = str(json.load(response)["agent_ids"][0])
    return agent_id, _variables(content)


def _variables(content: bytes) -> list[str]:
    """The tool variables an agent file names (their values never travel in it)."""
    data = json.loads(content)
    if isinstance(data, str):
        data = json.loads(data)
    names: list[str] = []
    for agent in data.get("agents") or []:
        names += list(agent.get("tool_exec_environment_variables") or {})
    return names


def _patch_secrets(args: argparse.Namespace, agent_id: str, secrets: dict[str, str]) -> None:
    body = json.dumps({"secrets": secrets}).encode()
    request = _request(args, "PATCH", f"/v1/agents/{agent_id}", data=body, headers={"Content-Type": "application/json"})
    with _open(request):
        pass


def _secrets(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise CommandError(f"--secrets is not JSON: {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise CommandError("--secrets must be a JSON object of names to string values")
    return value


def _request(
    args: argparse.Namespace, method: str, path: str, *, data: Any = None, headers: dict[str, str] | None = None
) -> urllib.request.Request:
    if not args.key:
        raise CommandError("no API key: pass --key or set LETTA_API_KEY")
    return urllib.request.Request(
        args.url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {args.key}", **(headers or {})},
    )


def _open(request: urllib.request.Request) -> Any:
    try:
        return urllib.request.urlopen(request, timeout=600)  # the user's own server URL
    except urllib.error.HTTPError as exc:
        raise CommandError(f"{request.get_method()} {request.full_url}: {exc.code} {_detail(exc)}") from exc
    except urllib.error.URLError as exc:
        raise CommandError(f"cannot reach {request.full_url}: {exc.reason}") from exc


def _detail(exc: urllib.error.HTTPError) -> str:
    body = exc.read()
    try:
        return str(json.loads(body).get("detail"))
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:500]


def _figures(size: int, seconds: float) -> str:
    return f"{size / 1e6:.1f} MB in {seconds:.1f} s, {size / 1e6 / max(seconds, 1e-6):.1f} MB/s"


def _fail(message: str) -> int:
    print(f"o: {message}", file=sys.stderr)
    return 1
