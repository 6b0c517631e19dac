"""Sleep-time compute: between conversations the agent reorganizes its memory, and may evolve.

A pass, as Letta's sleep-time agents do it: read the conversation since the last pass, let the
agent's model rewrite core-memory blocks and record learned facts through the built-in memory tools
(``memory_rethink``, ``archival_memory_insert``, ``archival_memory_delete``), and consolidate
archival memory (exact and near duplicates are removed deterministically, others by the model), all
within a token and time budget.

- :mod:`~o.evolution.sleeptime.passes` — one pass (:func:`run_pass`), which may start an evolution;
- :mod:`~o.evolution.sleeptime.rethink` — the model's turn with the built-in tools;
- :mod:`~o.evolution.sleeptime.dedupe` — archival de-duplication;
- :mod:`~o.evolution.sleeptime.triggers` — due agents (schedule, every N user messages), the sweep,
  the run-end trigger;
- :mod:`~o.evolution.sleeptime.scheduler` — the local scheduler inside ``o serve`` (EventBridge
  Scheduler → ``functions/sleeptime/handler.py`` on AWS).
"""

from o.evolution.sleeptime.dedupe import dedupe_archival, dedupe_near
from o.evolution.sleeptime.passes import run_pass
from o.evolution.sleeptime.result import PassResult
from o.evolution.sleeptime.rethink import SLEEPTIME_MARKER
from o.evolution.sleeptime.scheduler import LocalScheduler, start_local_scheduler
from o.evolution.sleeptime.triggers import RunEndTrigger, after_user_messages, due_agents, sweep

__all__ = [
    "SLEEPTIME_MARKER",
    "LocalScheduler",
    "PassResult",
    "RunEndTrigger",
    "after_user_messages",
    "dedupe_archival",
    "dedupe_near",
    "due_agents",
    "run_pass",
    "start_local_scheduler",
    "sweep",
]
