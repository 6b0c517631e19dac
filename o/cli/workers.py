"""The worker processes of a multi-process `o serve`: how many, what they inherit, and the app factory
each one calls (uvicorn ``factory=True`` imports ``o.cli.workers:worker_app``)."""

from __future__ import annotations

import atexit
import os
import sys

from fastapi import FastAPI

from o.config import ConfigError, env_name, load_settings
from o.runtime import Runtime, api_app, key_file, local_services, settle_heap, start
from o.store import db as database


def worker_count(rt: Runtime) -> int:
    """O_WORKERS, or one per core as far as the server's connections allow: every process
    (the parent and each worker) may open O_POOL_MAX of them."""
    settings = rt.settings
    with rt.db.read() as conn:
        allowed = database.connection_limit(conn)
    # a few for `o keys create`, `o migrate` and a psql while the server runs
    fit = (allowed - 5) // settings.pool_max - 1
    if settings.workers is None:
        # The API is CPU-bound in Python, so one interpreter uses one core; on 2 cores two workers
        # starved Postgres into 400-700 ms p99 spikes that one worker never showed (bench/api.py).
        return max(1, min((os.cpu_count() or 1) - 1, fit))
    if settings.workers > max(1, fit):
        raise ConfigError(
            f"invalid configuration: O_WORKERS: {settings.workers} workers and the parent with O_POOL_MAX="
            f"{settings.pool_max} connections each need more than the {allowed} Postgres allows; "
            "lower O_WORKERS or O_POOL_MAX"
        )
    return settings.workers


def worker_environment(rt: Runtime) -> dict[str, str]:
    """What a multi-process `o serve`'s workers must find in their environment: they open their own
    pools against the Postgres this process started (and migrated), and start or migrate none."""
    return {
        "O_DATABASE_URL": rt.database_url,
        # the parent's key file, even when --data-dir named the data directory (workers see no flags)
        env_name("secrets", "key_file"): str(key_file(rt.settings)),
        "O_RUN_MIGRATIONS": "false",
        "O_SLEEPTIME_ENABLED": "true" if rt.settings.sleeptime.enabled else "false",
    }


def worker_app() -> FastAPI:
    """The app factory each worker process of a multi-process `o serve` calls (uvicorn ``factory=True``).

    A worker serves requests only; the parent runs the background work (:func:`start_background`).
    """
    _die_with_parent()
    settings = load_settings()
    rt = start(settings, migrate_schema=False)
    atexit.register(rt.close)
    app = api_app(settings, local_services(rt))
    settle_heap()
    return app


def _die_with_parent() -> None:
    """A worker must not outlive its `o serve` (killed hard, as in a crash): it would keep the
    listening socket, and the next `o serve` could not bind the port. The run it was driving
    is durable; the next `o serve` finishes it."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import multiprocessing
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before prctl took effect
        os._exit(1)
