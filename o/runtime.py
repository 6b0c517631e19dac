"""The composition root: settings → database → app. Local server and Lambda both start here."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

from o.config import Settings, validated
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

        return database_url_from_secret(
            os.environ["O_DB_HOST"], secret_arn, os.environ.get("O_DB_NAME", "o")
        ), None
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


def start_local_services(rt: Runtime, app: Any) -> None:
    """What `o serve` runs beside the API (in AWS, Step Functions and EventBridge do this work):

    - runs a previous process left mid-loop are finished from their durable state, in the
      background so serving starts at once;
    - the sleep-time scheduler (which also resumes undecided evolutions) and the every-N-user-messages
      trigger on the local loop's run ends, unless O_SLEEPTIME=false.
    """
    from o.agent.engine import default_engine
    from o.agent.runner import resume_stale
    from o.observability import logger

    engine = default_engine(rt.db)
    app.state.agent_engine = engine
    if rt.settings.sleeptime:
        from o.evolution import loop
        from o.evolution.sleeptime import RunEndTrigger

        # every N user messages: checked when a run ends, on the trigger's own thread
        engine.on_run_end = RunEndTrigger(lambda: loop.default_deps(rt.db, engine))

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
