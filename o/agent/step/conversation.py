"""One run at a time per conversation (an agent's own message history is one conversation, and each
of its conversations, :mod:`o.agent.conversations`, another; runs of different ones go side by side).

A run that is sent while another run of the agent is active (working, or paused on an approval)
queues: its input messages wait in its metadata (``pending_input``) with its place in the queue
(``queue``), and enter the history only when the run *claims* the conversation, on its first step,
once every run ahead of it has ended. So each run's prompt ends with its own messages, and its reply
answers them (without this, eight concurrent sends stored eight user messages first and most
replies answered another run's message).

The rule is durable state in Postgres, the same for the local loop and the state machine: whoever
drives the run (a request thread, `o serve` after a restart, the agent-step Lambda) asks to claim
on its first step, and waits (:func:`o.agent.step.actions.advance`) while it may not.

Pure decisions: :func:`position_after`, :func:`may_claim`, :func:`turn_order`. Effects: :func:`claim`,
:func:`input_rows`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from o.agent.transcript import derived_id
from o.store import agents as agent_store
from o.store import messages as message_store
from o.store import runs as run_store
from o.store.db import Conn
from o.store.records import Run

PENDING_KEY = "pending_input"
QUEUE_KEY = "queue"


@dataclass(frozen=True)
class Input:
    """A message the caller sent, as the run keeps it until it enters the history."""

    role: str
    text: str
    name: str | None = None
    otid: str | None = None
    sender_id: str | None = None

    def stored(self) -> dict[str, Any]:
        return {"role": self.role, "text": self.text, "name": self.name, "otid": self.otid, "sender_id": self.sender_id}


def queued(run: Run) -> bool:
    """The run waits for the conversation: its input is not in the history yet."""
    return PENDING_KEY in run.metadata


def position_after(active: Sequence[Run]) -> int:
    """The queue place of a run sent now, behind every active run of its conversation."""
    return 1 + max((int(r.metadata.get(QUEUE_KEY, 0)) for r in active), default=0)


def may_claim(run: Run, active: Sequence[Run]) -> bool:
    """Whether queued ``run`` may take the conversation: no other active run holds it (a run whose
    input is in the history and that has not ended) and none queued ahead of it waits."""
    others = [r for r in active if r.id != run.id]
    if any(not queued(r) for r in others):
        return False
    mine = int(run.metadata.get(QUEUE_KEY, 0))
    return all(int(r.metadata.get(QUEUE_KEY, 0)) > mine for r in others)


def turn_order(runs: Sequence[Run]) -> list[list[Run]]:
    """The runs grouped by conversation, each group in the order its runs may take the conversation: the
    run that holds it first, then the queue. (Resumed in another order, a queued run would wait for a run
    nobody drives.)"""
    by_agent: dict[tuple[str, str | None], list[Run]] = {}
    for run in runs:
        by_agent.setdefault((run.agent_id, run.conversation_id), []).append(run)
    return [
        sorted(group, key=lambda r: (queued(r), int(r.metadata.get(QUEUE_KEY, 0)), r.created_at))
        for group in by_agent.values()
    ]


def input_ids(run_id: str, count: int) -> list[str]:
    """The ids the run's input messages get, known before they are stored (the same on a retry)."""
    return [derived_id("message", run_id, "input", i) for i in range(count)]


def input_rows(run: Run, messages: Sequence[Input]) -> list[dict[str, Any]]:
    """The history rows of the run's input messages."""
    return [
        {
            "id": message_id,
            "organization_id": run.organization_id,
            "agent_id": run.agent_id,
            "role": m.role,
            "content": [{"type": "text", "text": m.text}],
            "text": m.text,
            "name": m.name,
            "otid": m.otid,
            "sender_id": m.sender_id,
            "run_id": run.id,
        }
        for message_id, m in zip(input_ids(run.id, len(messages)), messages, strict=True)
    ]


def claim(conn: Conn, run: Run) -> Run | None:
    """Take the conversation for queued ``run`` (its input enters the history) if it may now; the run
    as it then stands, or None while it must wait. Under the agent's row lock, which a new send takes
    too, so two runs never both claim and a send never misses a claim."""
    if not may_claim(run, run_store.active_in_conversation(conn, run.agent_id, run.conversation_id)):
        return None  # the usual answer while waiting, found without taking the lock
    if agent_store.get(conn, run.organization_id, run.agent_id, for_update=True) is None:
        return None  # deleted meanwhile: the next try refuses the run
    current = run_store.get(conn, run.id, for_update=True)
    if current is None or not queued(current):
        return current
    if not may_claim(current, run_store.active_in_conversation(conn, run.agent_id, run.conversation_id)):
        return None
    pending = [Input(**m) for m in current.metadata[PENDING_KEY]]
    message_store.insert_many(conn, input_rows(current, pending))
    metadata = {k: v for k, v in current.metadata.items() if k != PENDING_KEY}
    return run_store.update(conn, run.id, {"metadata": metadata})
