"""`o serve`: the API on this machine, with the embedded Postgres unless told otherwise."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from o import runtime
from o.cli.settings import from_args
from o.config import ConfigError, export_to_children
from o.store.migrate import SchemaError, check_schema


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = from_args(args)
    # This process starts (and migrates) the database and runs the background work once,
    # whatever the number of processes that serve requests.
    rt = runtime.start(settings)
    try:
        # never serve a schema this code does not know (a newer O migrated it), nor one it has not
        # migrated yet (O_RUN_MIGRATIONS=false); with migrations on, start() already refused a newer one
        check_schema(rt.database_url)
        workers = runtime.worker_count(rt)
    except (ConfigError, SchemaError):
        rt.close()
        raise
    where = "embedded Postgres in " + str(settings.data_dir) if rt.embedded else "the Postgres at O_DATABASE_URL"
    plural = "es" if workers > 1 else ""
    print(
        f"O is serving the Letta v1 API on http://{settings.host}:{settings.port} (memory: {where}; "
        f"{workers} worker process{plural})"
    )
    print("Get an API key with:  o keys create" + (f" --data-dir {settings.data_dir}" if args.data_dir else ""))
    log_level = settings.log_level.lower()
    try:
        services = runtime.local_services(rt)
        runtime.start_background(rt, services)
        if workers == 1:
            app = runtime.api_app(settings, services)
            uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level)
        else:
            export_to_children(runtime.worker_environment(rt))
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


def add_parser(sub: Any, db_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("serve", help="start the API server")
    db_flags(p)
    p.add_argument("--port", type=int, help="port (env O_PORT, default 8283)")
    p.add_argument("--host", help="bind address (env O_HOST, default 127.0.0.1)")
    p.add_argument(
        "--workers",
        type=int,
        help="processes serving requests (env O_WORKERS, default: one per core left beside Postgres)",
    )
    p.add_argument(
        "--no-sleeptime",
        action="store_true",
        help="do not run sleep-time compute in this process (env O_SLEEPTIME_ENABLED=false)",
    )
    p.set_defaults(func=serve)
