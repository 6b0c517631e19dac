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
# a bundle larger than this goes through an upload session (POST /v1/uploads/): its bytes to the blob
# store (a presigned S3 URL on AWS), past API Gateway's 10 MB and Lambda's 6 MB; smaller ones in one request
SESSION_THRESHOLD = 4 * 1024 * 1024
_POLL_S = 0.5
# a bundle is a sequence of msgpack bin values: its first byte is one of bin 8/16/32
_BUNDLE_FIRST_BYTES = {0xC4, 0xC5, 0xC6}


def add_parsers(sub: Any) -> None:
    p_export = sub.add_parser("export", help="export an agent to a file (O's full bundle, or --format af)")
    p_export.add_argument("agent_id")
    p_export.add_argument("file", type=Path)
    p_export.add_argument("--format", choices=("bundle", "af"), default="bundle")
    p_export.add_argument(
        "--direct", action="store_true", help="stream the bundle in one response (no export job; up to 6 MB on AWS)"
    )
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
        if args.format == "bundle" and not args.direct:
            request = _exported(args)
        else:
            request = _request(args, "GET", f"/v1/agents/{args.agent_id}/{path}")
        with _open(request) as response, partial.open("wb") as out:
            length = response.headers.get("Content-Length")
            with bar(f"downloading {args.agent_id}", int(length) if length else None) as advance:
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


def _exported(args: argparse.Namespace) -> urllib.request.Request:
    """Run an export job (the bundle written to the server's blob store) and the request that downloads
    it: a presigned URL (AWS: no single Lambda response carries it) or the server's own route."""
    state = _json(args, "POST", f"/v1/agents/{args.agent_id}/exports")
    with bar(f"exporting {args.agent_id}", None) as advance:
        while state["status"] not in ("completed", "error"):
            time.sleep(_POLL_S)
            advance(0)
            state = _json(args, "GET", f"/v1/exports/{state['id']}")
    if state["status"] == "error":
        raise CommandError(f"the export failed: {state.get('error_message')}")
    url = str(state["download_url"])
    if url.startswith(args.url.rstrip("/") + "/"):  # the server's own route takes the key
        return _request(args, "GET", url[len(args.url.rstrip("/")) :])
    return urllib.request.Request(url, method="GET")  # presigned: the signature is the authorization


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
    size = os.fstat(source.fileno()).st_size
    if size > SESSION_THRESHOLD:
        return _import_through_session(args, source, size)
    query = "?" + urllib.parse.urlencode({"name": args.name}) if args.name else ""
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


def _import_through_session(args: argparse.Namespace, source: BinaryIO, size: int) -> tuple[str, list[str]]:
    """Create an upload session, PUT the bytes where it says (without the API key), complete it, and
    follow the import job to its end."""
    body: dict[str, Any] = {"kind": "bundle", "size": size, **({"name": args.name} if args.name else {})}
    session = _json(args, "POST", "/v1/uploads/", body)
    with bar(f"uploading {args.file.name}", size) as advance:
        put = urllib.request.Request(
            session["upload_url"], data=_Counted(source, advance), method="PUT",
            headers={**session.get("upload_headers", {}), "Content-Length": str(size)},
        )  # fmt: skip
        with _open(put):
            pass
    state = _json(args, "POST", f"/v1/uploads/{session['id']}/complete")
    with bar("importing", None) as advance:
        while state["status"] not in ("completed", "error"):
            time.sleep(_POLL_S)
            advance(0)
            state = _json(args, "GET", f"/v1/uploads/{session['id']}")
    if state["status"] == "error":
        raise CommandError(f"the import failed: {state.get('error_message')}")
    result = state["result"]
    return result["agent_id"], result.get("unset_variables", [])


def _json(args: argparse.Namespace, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    with _open(_request(args, method, path, data=data, headers=headers)) as response:
        return json.load(response)


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
