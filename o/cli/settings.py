"""The settings a command runs with: the environment, with its flags on top."""

from __future__ import annotations

import argparse

from o.config import Settings, build_settings


def from_args(args: argparse.Namespace) -> Settings:
    # Flags win over the environment; both are validated by the same Settings model.
    return build_settings(
        data_dir=getattr(args, "data_dir", None),
        port=getattr(args, "port", None),
        host=getattr(args, "host", None),
        workers=getattr(args, "workers", None),
        database_url=getattr(args, "database_url", None),
        sleeptime={"enabled": False} if getattr(args, "no_sleeptime", False) else None,
    )
