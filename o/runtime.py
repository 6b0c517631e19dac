"""The composition root: settings → database → app. Local server and Lambda both start here."""

from __future__ import annotations

import os
from dataclasses import dataclass

from o.config import Settings
from o.store.db import Database
from o.store.embedded import EmbeddedPostgres
from o.store.migrate import migrate


@dataclass
class Runtime:
    settings: Settings
    db: Database
    database_url: str
    embedded: EmbeddedPostgres | None = None

    def close(self) -> None:
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


def start(settings: Settings, *, migrate_schema: bool | None = None) -> Runtime:
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
