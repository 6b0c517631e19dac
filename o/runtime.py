"""The composition root: settings → database → app. Local server and Lambda both start here."""

from __future__ import annotations

import atexit
import os
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from o.config import ConfigError, Settings, validated
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate


@dataclass
class Runtime:
    settings: Settings
    db: Database
    database_url: str
    embedded: EmbeddedPostgres | None = None
    services: list[Any] = field(default_factory=list)

    def close(self) -> None:
        for service in self.services:
            service.stop()
        self.db.close()
        if self.embedded is not None:
            self.embedded.stop()


def resolve_database_url(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """O_DATABASE_URL, else the RDS secret (AWS), else the embedded Postgres in the data dir."""
    if settings.database_url:
        return settings.database_url, None
    secret_arn = os.environ.get("O_DB_SECRET_ARN")
    if secret_arn:
        from o.store.aws_url import database_url_from_secret

        return database_url_from_secret(os.environ["O_DB_HOST"], secret_arn, os.environ.get("O_DB_NAME", "o")), None
    embedded = EmbeddedPostgres(settings.data_dir)
    return embedded.url, embedded


def check_environment() -> None:
    """Every module's settings model reads its variables here, once, so a bad value stops the
    process at start with the variable's name rather than failing the first request that needs it."""
    from o.agent.engine import AgentSettings
    from o.evolution.loop import EvolutionPolicy
    from o.evolution.sleeptime import SleeptimePolicy
    from o.llm.config import LLMSettings
    from o.tools.sandbox import SandboxSettings

    for model in (AgentSettings, LLMSettings, SandboxSettings, EvolutionPolicy, SleeptimePolicy):
        validated(model)


def start(settings: Settings, *, migrate_schema: bool | None = None) -> Runtime:
    check_environment()
    url, embedded = resolve_database_url(settings)
    if settings.run_migrations if migrate_schema is None else migrate_schema:
        migrate(url)
    lambda_mode = settings.runtime == "lambda"
    db = Database(
        url,
        min_size=1 if lambda_mode else settings.pool_min,
        max_size=1 if lambda_mode else settings.pool_max,
        prepared_statements=not (lambda_mode or settings.disable_prepared_statements),
    ).open()
    return Runtime(settings=settings, db=db, database_url=url, embedded=embedded)


class ServeSettings(BaseSettings):
    """How many processes `o serve` runs (env O_WORKERS, flag --workers)."""

    model_config = SettingsConfigDict(env_prefix="O_", extra="ignore", frozen=True)

    # None: one per core beside Postgres. The API is CPU-bound in Python, so one interpreter uses one
    # core; on 2 cores two workers (2,050 req/s) starved Postgres into 400-700 ms p99 spikes that one
    # worker (1,280 req/s, p99 ~60 ms at 16 connections) never showed (bench/api.py).
    workers: int | None = Field(default=None, ge=1, le=64)

    def worker_count(self, rt: Runtime) -> int:
        """O_WORKERS, or one per core as far as the server's connections allow: every process
        (the parent and each worker) may open O_POOL_MAX of them."""
        with rt.db.transaction() as conn:
            row = conn.execute(
                """SELECT current_setting('max_connections')::int
                          - current_setting('superuser_reserved_connections')::int AS n"""
            ).fetchone()
        # a few for `o keys create`, `o migrate` and a psql while the server runs
        fit = (int(row["n"]) - 5) // rt.settings.pool_max - 1
        if self.workers is None:
            return max(1, min((os.cpu_count() or 1) - 1, fit))
        if self.workers > max(1, fit):
            raise ConfigError(
                f"invalid configuration: O_WORKERS: {self.workers} workers and the parent with O_POOL_MAX="
                f"{rt.settings.pool_max} connections each need more than the {row['n']} Postgres allows; "
                "lower O_WORKERS or O_POOL_MAX"
            )
        return self.workers


def local_engine(rt: Runtime) -> Any:
    """The agent engine of one `o serve` process, with the every-N-user-messages sleep-time trigger
    on its run ends unless O_SLEEPTIME=false. Each serving process has its own: the trigger's
    check and the pass's own guard are in Postgres, so processes do not start a pass twice."""
    from o.agent.engine import default_engine

    engine = default_engine(rt.db)
    if rt.settings.sleeptime:
        from o.evolution import loop
        from o.evolution.sleeptime import RunEndTrigger

        # every N user messages: checked when a run ends, on the trigger's own thread
        engine.on_run_end = RunEndTrigger(lambda: loop.default_deps(rt.db, engine))
    return engine


def start_background(rt: Runtime, engine: Any) -> None:
    """The work `o serve` does beside the API, in exactly ONE process however many serve requests
    (in AWS, Step Functions and EventBridge do it):

    - runs a previous process left mid-loop are finished from their durable state, in the
      background so serving starts at once;
    - the sleep-time scheduler (which also resumes undecided evolutions), unless O_SLEEPTIME=false.
    """
    from o.agent.runner import resume_stale
    from o.observability import logger

    def resume() -> None:
        try:
            finished = resume_stale(engine.deps(), idle_s=0)
            if finished:
                logger.info("resumed runs left by a previous process", extra={"runs": len(finished)})
        except Exception:
            logger.exception("resuming stale runs failed")

    threading.Thread(target=resume, name="o-resume-runs", daemon=True).start()
    if rt.settings.sleeptime:
        from o.evolution.sleeptime import start_local_scheduler

        rt.services.append(start_local_scheduler(rt, poll_seconds=rt.settings.sleeptime_poll_seconds))


def start_local_services(rt: Runtime, app: Any) -> None:
    """A single-process `o serve`: the app's engine and the background work, in this process."""
    engine = local_engine(rt)
    app.state.agent_engine = engine
    start_background(rt, engine)


def prepare_workers(rt: Runtime) -> None:
    """Before a multi-process `o serve` spawns its workers: they inherit this environment, so they
    open their own pools against the Postgres this process started (and migrated) and do not
    start or migrate one themselves."""
    os.environ["O_DATABASE_URL"] = rt.database_url
    os.environ["O_RUN_MIGRATIONS"] = "false"
    os.environ["O_SLEEPTIME"] = "true" if rt.settings.sleeptime else "false"


def worker_app() -> Any:
    """The app factory each worker process of a multi-process `o serve` calls (uvicorn ``factory=True``).

    A worker serves requests only; the parent runs the background work (:func:`start_background`).
    """
    from o.api.app import create_app
    from o.config import load_settings

    _die_with_parent()
    settings = load_settings()
    rt = start(settings, migrate_schema=False)
    atexit.register(rt.close)
    app = create_app(rt.db, max_body_bytes=settings.max_body_bytes)
    app.state.agent_engine = local_engine(rt)
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
