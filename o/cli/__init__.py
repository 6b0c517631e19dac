"""`o` — the command line: `o serve`, `o keys create|list|revoke`, `o migrate`, `o evolve …`, `o export`,
`o import`, and, over a running server's API, `o agents list|create|show`, `o chat` and `o files upload`;
`o completion bash|zsh`.

Every failure ends the command with one line on stderr and a non-zero exit; `--debug` (anywhere on the
line) shows the traceback instead."""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from o import __version__
from o.cli import agents, chat, completion, doctor, evolve, files, keys, portable, serve
from o.config import ConfigError
from o.errors import OError
from o.observability import logger
from o.store.migrate import SchemaError


def db_flags(p: argparse.ArgumentParser) -> None:
    data_dir = p.add_argument(
        "--data-dir", type=Path, help="where the embedded Postgres keeps its data (env O_DATA_DIR)"
    )
    data_dir.complete = completion.DIRECTORY  # type: ignore[attr-defined]  # read by shtab: Tab offers directories
    p.add_argument("--database-url", help="use this Postgres instead of the embedded one (env O_DATABASE_URL)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="o", description="O: self-evolving stateful agents (Letta v1 API)")
    root.add_argument("--version", action="version", version=f"o {__version__}")
    root.add_argument("--debug", action="store_true", help="on an error, show the traceback (anywhere on the line)")
    sub = root.add_subparsers(dest="command", required=True)
    serve.add_parser(sub, db_flags)
    keys.add_parser(sub, db_flags)
    p_migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    db_flags(p_migrate)
    p_migrate.set_defaults(func=keys.migrate_cmd)
    evolve.add_parser(sub, db_flags)
    portable.add_parsers(sub)
    agents.add_parser(sub)
    chat.add_parser(sub)
    doctor.add_parser(sub, db_flags)
    files.add_parser(sub)
    completion.add_parser(sub, root)
    return root


def one_line(exc: BaseException) -> tuple[str, int]:
    """What a failed command prints (one line) and its exit code."""
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, OError):
        return exc.message, 1
    letta = sys.modules.get("letta_client")  # loaded only by the commands that talk to a server
    if letta is not None and isinstance(exc, letta.APIConnectionError):
        url = exc.request.url
        where = f"{url.scheme}://{url.netloc.decode()}"
        return f"cannot reach O at {where} (is `o serve` running? --url or LETTA_BASE_URL names another)", 1
    if letta is not None and isinstance(exc, letta.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("detail") or body.get("message") or exc.message
        return f"the server answered {exc.status_code}: {detail}", 1
    # a failed migration (rolled back), a schema this release does not know, or anything unforeseen
    prefix = "" if isinstance(exc, SchemaError) else f"{type(exc).__name__}: "
    return f"{prefix}{exc}" + ("" if isinstance(exc, SchemaError) else " (--debug shows the traceback)"), 1


def main(argv: list[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words
    args = parser().parse_args([w for w in words if w != "--debug"])
    # stdout carries a command's result (a key, JSON, a table) for pipes; log lines go beside it
    handler = logger.registered_handler
    logs = handler.setStream(sys.stderr) if isinstance(handler, logging.StreamHandler) else None
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        message, code = one_line(exc)
        print(f"o: {message}", file=sys.stderr)
        return code
    finally:
        if logs is not None and isinstance(handler, logging.StreamHandler):
            handler.setStream(logs)
