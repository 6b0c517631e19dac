"""The evaluator is locked against the agent's own tools: a memory edit that reaches for it is refused.

The evaluator (evaluation cases, judge, gate) lives outside the agent's memory, in ``evaluation_suites``,
hashed when an evolution starts and checked before its gate and its promotion. An agent that tries to
bring it into reach — a memory block named for the evaluator, or the judge's or proposer's own prompt
written into memory to steer them — is refused, and the attempt is recorded for the owner
(``evaluator_tampering``, and the running evolution's events). The Darwin Gödel Machine showed that a
self-improving agent will edit its evaluator when it can; this keeps it from being able to.
"""

from __future__ import annotations

from typing import Any

from o.store import evolution as evolution_store
from o.store.db import Conn

# names that mean the evaluator: as configuration keys (a proposal's) and as memory block labels
EVALUATOR_NAMES = frozenset(
    {
        "evaluator",
        "evaluation",
        "evaluation_suite",
        "eval_cases",
        "cases",
        "gate",
        "judge",
        "checks",
        "held_out",
    }
)
JUDGE_MARKER = "You are an impartial judge of an AI assistant's reply."
PROPOSER_MARKER = "You propose one improvement to an AI agent's configuration."
# the arguments of the memory tools that name a block or carry text into it
_LABEL_ARGS = ("label", "block_label")
_TEXT_ARGS = ("content", "new_content", "new_memory", "new_str", "value")


def refusal(tool_name: str, args: dict[str, Any]) -> str | None:
    """Why the tool call reaches for the evaluator, or None."""
    for key in _LABEL_ARGS:
        label = args.get(key)
        if isinstance(label, str) and label.strip().lower() in EVALUATOR_NAMES:
            return f"{tool_name}: the block {label!r} is reserved: the evaluator is locked against the agent's tools"
    for key in _TEXT_ARGS:
        text = args.get(key)
        if isinstance(text, str) and (JUDGE_MARKER in text or PROPOSER_MARKER in text):
            return f"{tool_name}: writing the evaluator's own prompt into memory is refused"
    return None


def guard(conn: Conn, organization_id: str, agent_id: str, tool_name: str, args: dict[str, Any]) -> str | None:
    """Record and return the refusal of a call that reaches for the evaluator; None for any other call."""
    reason = refusal(tool_name, args)
    if reason is not None:
        evolution_store.record_tampering(conn, organization_id, agent_id, "tool", reason)
    return reason
