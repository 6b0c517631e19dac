"""The agents steps read, kept per process for the version they were read at.

Every phase of every step needs its run's agent with its tools' rows (a JSON object of ~12 kB for an
agent with Letta's base tools), and building and parsing it was the largest part of the phase's entry
read, done twice per step for an agent that almost never changes between them. The entry read now asks
only for the agent's version (its row's xmin and those of its tool attachments and tools,
:func:`o.store.runs.load_state`), and the agent itself only when this process has not read that version.

Only reads outside a transaction (autocommit) fill it: they see committed rows only, so a version names
one content (a transaction that changed its own row twice would leave two contents under one xmin).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from o.store import runs as run_store
from o.store.db import Conn, outside_transaction


class AgentCache:
    """The last version read of each of at most ``max_agents`` agents (the least recently used go first)."""

    def __init__(self, max_agents: int = 256) -> None:
        self.max_agents = max_agents
        self._entries: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def agent(self, conn: Conn, organization_id: str, agent_id: str, version: str | None) -> dict[str, Any] | None:
        """The agent at ``version`` (None: gone) as :func:`o.store.runs.step_agent` reads it, a copy the
        caller may change at its top level (its nested values are shared: read them only)."""
        if version is None:
            return None
        with self._lock:
            hit = self._entries.get(agent_id)
            if hit is not None and hit[0] == version:
                self._entries.move_to_end(agent_id)
                self.hits += 1
                return dict(hit[1])
        read = run_store.step_agent(conn, organization_id, agent_id)
        if read is None:
            return None
        version, agent = read
        with self._lock:
            self.misses += 1
            if outside_transaction(conn):
                self._entries[agent_id] = (version, agent)
                self._entries.move_to_end(agent_id)
                while len(self._entries) > self.max_agents:
                    self._entries.popitem(last=False)
        return dict(agent)


# One per process: the API server's step threads and a warm Lambda reuse it across steps. An agent with
# Letta's base tools is ~30 kB once parsed, so at most ~8 MB.
default_agents = AgentCache()
