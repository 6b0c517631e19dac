"""`o` — the command line: `o serve`, `o keys create`, `o migrate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from o.config import ConfigError, Settings, build_settings


def _settings(args: argparse.Namespace) -> Settings:
    # Flags win over the environment; both are validated by the same Settings model.
    return build_settings(
        data_dir=getattr(args, "data_dir", None),
        port=getattr(args, "port", None),
        host=getattr(args, "host", None),
        sleeptime=False if getattr(args, "no_sleeptime", False) else None,
        database_url=getattr(args, "database_url", None),
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from o import runtime
    from o.config import validated

    settings = _settings(args)
    flags = {"workers": args.workers} if args.workers is not None else {}
    serve_settings = validated(runtime.ServeSettings, **flags)
    # This process starts (and migrates) the database and runs the background work once,
    # whatever the number of processes that serve requests.
    rt = runtime.start(settings)
    try:
        workers = serve_settings.worker_count(rt)
    except ConfigError:
        rt.close()
        raise
    where = "embedded Postgres in " + str(settings.data_dir) if rt.embedded else "the Postgres at O_DATABASE_URL"
    print(
        f"O is serving the Letta v1 API on http://{settings.host}:{settings.port} (memory: {where}; "
        f"{workers} worker process{'es' if workers > 1 else ''})"
    )
    print("Get an API key with:  o keys create" + (f" --data-dir {settings.data_dir}" if args.data_dir else ""))
    log_level = settings.log_level.lower()
    try:
        if workers == 1:
            from o.api.app import create_app

            app = create_app(rt.db, max_body_bytes=settings.max_body_bytes)
            runtime.start_local_services(rt, app)
            uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level)
        else:
            runtime.start_background(rt, runtime.local_engine(rt))
            runtime.prepare_workers(rt)
            uvicorn.run(
                "o.runtime:worker_app",
                factory=True,
                workers=workers,
                host=settings.host,
                port=settings.port,
                log_level=log_level,
            )
    finally:
        rt.close()
    return 0


def keys_create(args: argparse.Namespace) -> int:
    from o import runtime
    from o.store import orgs

    rt = runtime.start(_settings(args))
    try:
        with rt.db.transaction() as conn:
            org = orgs.get_or_create_org(conn, args.org)
            key_id, secret = orgs.create_api_key(conn, org["id"], args.name)
    finally:
        rt.close()
    print(secret)
    print(
        f"(key {key_id} for organization {org['name']!r} / {org['id']}; shown once, store it safely)", file=sys.stderr
    )
    return 0


def migrate_cmd(args: argparse.Namespace) -> int:
    from o import runtime

    rt = runtime.start(_settings(args), migrate_schema=False)
    try:
        from o.store.migrate import migrate

        applied = migrate(rt.database_url)
    finally:
        rt.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def _db_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", type=Path, help="where the embedded Postgres keeps its data (env O_DATA_DIR)")
    p.add_argument("--database-url", help="use this Postgres instead of the embedded one (env O_DATABASE_URL)")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="o", description="O: self-evolving stateful agents (Letta v1 API)")
    sub = root.add_subparsers(dest="command", required=True)

    p_serve = sub.add_parser("serve", help="start the API server")
    _db_flags(p_serve)
    p_serve.add_argument("--port", type=int, help="port (env O_PORT, default 8283)")
    p_serve.add_argument("--host", help="bind address (env O_HOST, default 127.0.0.1)")
    p_serve.add_argument(
        "--workers",
        type=int,
        help="processes serving requests (env O_WORKERS, default: one per core left beside Postgres)",
    )
    p_serve.add_argument(
        "--no-sleeptime",
        action="store_true",
        help="do not run sleep-time compute in this process (env O_SLEEPTIME=false)",
    )
    p_serve.set_defaults(func=serve)

    p_keys = sub.add_parser("keys", help="manage API keys")
    keys_sub = p_keys.add_subparsers(dest="keys_command", required=True)
    p_create = keys_sub.add_parser("create", help="create an API key and print it")
    _db_flags(p_create)
    p_create.add_argument("--org", default="default", help="organization name (created if needed)")
    p_create.add_argument("--name", help="a label for the key")
    p_create.set_defaults(func=keys_create)

    p_migrate = sub.add_parser("migrate", help="apply pending schema migrations")
    _db_flags(p_migrate)
    p_migrate.set_defaults(func=migrate_cmd)

    from o.evolution.cli import add_parser as add_evolve_parser

    add_evolve_parser(sub, _db_flags)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"o: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
