"""What a step action reports to its caller (the state machine's contract), and the step's stable id."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from o.agent import transcript
from o.store.records import NextAction, StopReason


class SimulatedCrash(BaseException):
    """Raised by fault injection to stand for the process dying; nothing in the loop catches it."""


@dataclass(frozen=True)
class Outcome:
    run_id: str
    iteration: int
    next: NextAction
    stop_reason: StopReason | None = None
    # the run waits for its conversation (another run of the agent is active): try the step again
    queued: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "iteration": self.iteration,
            "next": str(self.next),
            "stop_reason": None if self.stop_reason is None else str(self.stop_reason),
        }


# a phase asks for its step's id several times (its rows, its messages, its locks): a uuid5 each
@functools.lru_cache(maxsize=1024)
def step_id_for(run_id: str, index: int) -> str:
    """The step's id, the same on every replay: the idempotency key of its messages."""
    return transcript.derived_id("step", run_id, index)
