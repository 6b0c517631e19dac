"""The commands that talk to a running O over HTTP (`o agents …`, `o chat`): the server's address and key,
a Letta SDK client for them, and agents named by id or by name.

They go through the public API with Letta's own SDK, as any client would: whatever they show is what the
API serves, and the server keeps all the logic."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported when a command needs it: `o serve` and `o keys` start without the SDK
    from letta_client import Letta

from o.errors import InvalidInput, NotFound

DEFAULT_URL = "http://127.0.0.1:8283"


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--url", help=f"the O server (env LETTA_BASE_URL, default {DEFAULT_URL})")
    p.add_argument("--key", help="an API key, as `o keys create` prints it (env LETTA_API_KEY)")


def client(args: argparse.Namespace) -> Letta:
    url = args.url or os.environ.get("LETTA_BASE_URL") or DEFAULT_URL
    key = args.key or os.environ.get("LETTA_API_KEY")
    if not key:
        raise InvalidInput("no API key: pass --key or set LETTA_API_KEY (`o keys create` makes one)", field="key")
    from letta_client import Letta

    return Letta(base_url=url, api_key=key, timeout=300.0, max_retries=0)


def find_agent(api: Letta, ref: str) -> Any:
    """The agent ``ref`` names: an id (``agent-…``), else the one agent with that name."""
    if ref.startswith("agent-"):
        return api.agents.retrieve(ref)
    matches = list(api.agents.list(name=ref))
    if not matches:
        raise NotFound(f"no agent named {ref!r} (`o agents list` shows them)")
    if len(matches) > 1:
        ids = ", ".join(a.id for a in matches)
        raise InvalidInput(f"{len(matches)} agents are named {ref!r}: use an id ({ids})", field="agent")
    return matches[0]


def get_json(api: Letta, path: str) -> Any:
    """An O route the Letta SDK has no method for (evolutions, revisions), as plain JSON."""
    return api.get(path, cast_to=object)
