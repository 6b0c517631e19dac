"""`o serve`: the API on this machine, with the embedded Postgres unless told otherwise.

Stopping (Ctrl-C, SIGTERM): uvicorn stops accepting requests and gives those in flight
:data:`GRACE_S` seconds, then the runtime stops the background work, the pool and the embedded
Postgres. A run still going is durable: the next `o serve` finishes it.
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psutil

from o import runtime
from o.cli import workers as workers_of
from o.cli.progress import steps
from o.cli.settings import from_args
from o.config import ConfigError, export_to_children
from o.store.migrate import SchemaError, check_schema

# What requests in flight get once a stop is asked for (the whole stop must take under 2 s).
GRACE_S = 0.5
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def port_holder(port: int) -> str:
    """Who listens on ``port`` on this machine (" by PID n (command)"), or "" when that cannot be known."""
    try:
        listening = [c for c in psutil.net_connections(kind="inet") if c.laddr and c.laddr.port == port and c.pid]
        if listening:
            proc = psutil.Process(listening[0].pid)
            command = " ".join(" ".join(proc.cmdline()).split()) or proc.name()
            return f" by PID {proc.pid} ({command[:80]})"
    except (psutil.Error, OSError):
        pass  # another user's process: its owner stays unknown
    return ""


def check_port(host: str, port: int) -> None:
    """Refuse to start, in one line, when the port is taken (before Postgres starts or a banner is printed)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror} (--host / O_HOST)") from None
            raise ConfigError(
                f"cannot serve on {host}:{port}: the port is in use{port_holder(port)}; stop it, or pick another "
                "port with --port / O_PORT"
            ) from None


def serve(args: argparse.Namespace) -> int:
    settings = from_args(args)
    check_port(settings.host, settings.port)
    # This process starts (and migrates) the database and runs the background work once,
    # whatever the number of processes that serve requests.
    with steps("applying migrations") as told:
        rt = runtime.start(settings, progress=told)
    try:
        # never serve a schema this code does not know (a newer O migrated it), nor one it has not
        # migrated yet (O_RUN_MIGRATIONS=false); with migrations on, start() already refused a newer one
        check_schema(rt.database_url)
        workers = workers_of.worker_count(rt)
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
    try:
        with _signals_interrupt():
            _run(rt, workers)
    except KeyboardInterrupt:  # a stop asked for before uvicorn took the signals over
        pass
    finally:
        with _signals_ignored():
            rt.close()
    _exit_if_requests_linger()
    return 0


def _run(rt: runtime.Runtime, workers: int) -> None:
    import uvicorn

    settings = rt.settings
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level.lower(),
        # a line per request only when asked for (O_LOG_LEVEL=DEBUG): writing it was 9% of a GET's CPU
        "access_log": settings.log_level.upper() == "DEBUG",
        "timeout_graceful_shutdown": GRACE_S,
    }
    services = runtime.local_services(rt)
    runtime.start_background(rt, services)
    if workers == 1:
        app = runtime.api_app(settings, services)
        runtime.settle_heap()
        uvicorn.run(app, **options)
    else:
        runtime.settle_heap()  # before the workers fork: their copies of it stay shared
        export_to_children(workers_of.worker_environment(rt))
        uvicorn.run("o.cli.workers:worker_app", factory=True, workers=workers, **options)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM stops the server the way Ctrl-C does. uvicorn catches both while it serves and, once
    shut down, raises the caught signal again under the handler that was there before: with the
    default SIGTERM handler that kills this process on the spot, before the runtime (and with it the
    embedded Postgres) is stopped. Raised as KeyboardInterrupt instead, it unwinds to the cleanup."""
    previous = _install(signal.default_int_handler)
    try:
        yield
    finally:
        _restore(previous)


@contextmanager
def _signals_ignored() -> Iterator[None]:
    """A second Ctrl-C must not cut the cleanup short and leave Postgres running."""
    previous = _install(signal.SIG_IGN)
    try:
        yield
    finally:
        _restore(previous)


Handler = Callable[[int, Any], Any] | int | signal.Handlers | None


def _install(handler: Handler) -> dict[signal.Signals, Handler]:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in _STOP_SIGNALS}


def _restore(previous: dict[signal.Signals, Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def _exit_if_requests_linger() -> None:
    """Requests still running on the server's worker threads (a send waiting on its LLM) would keep
    the interpreter from exiting until they end, and a daemon thread still in a call (a sleep-time
    pass in its client's retries) can abort the interpreter's finalization when it writes to stderr
    (SIGABRT, "could not acquire lock ... at interpreter shutdown"): exit now. Everything they were
    doing is durable and resumes on the next start."""
    lingering = [t for t in threading.enumerate() if t.is_alive() and t is not threading.main_thread()]
    if lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


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
