"""The settings a command runs with: the environment, with its flags on top."""

from __future__ import annotations

import argparse

from o.config import Settings, build_settings
from o.store import reach


def from_args(args: argparse.Namespace, *, check_database: bool = True) -> Settings:
    """Flags win over the environment; both are validated by the same Settings model. A database the
    person named (--database-url, O_DATABASE_URL) must answer: if not, the command stops with one line
    naming its host, port and the cause, before anything starts."""
    settings = build_settings(
        data_dir=getattr(args, "data_dir", None),
        port=getattr(args, "port", None),
        host=getattr(args, "host", None),
        workers=getattr(args, "workers", None),
        database_url=getattr(args, "database_url", None),
        sleeptime={"enabled": False} if getattr(args, "no_sleeptime", False) else None,
    )
    if settings.database_url and check_database:
        reach.check_reachable(settings.database_url)
    return settings
