"""Phase 2's decisions about one tool call (pure): whether it may run, with which arguments, and
whether the model asked to go on afterwards; and a call's result as stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from o.agent import transcript
from o.agent.tool_rules import Call, ToolRules
from o.agent.tools import HEARTBEAT, AgentTool
from o.llm.types import ToolCall

SUCCESS = "success"
ERROR = "error"
CANCELLED_BEFORE_RUN = "The run was cancelled before this tool ran."


@dataclass(frozen=True)
class Verdict:
    """A call judged before it runs: ``error`` (the result the model gets instead) or the ``args``
    to run it with."""

    error: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    heartbeat: bool = False
    # rejected by a tool rule: it does not count as a call for the rules
    violation: bool = False


def judge(
    call: ToolCall,
    tools: dict[str, AgentTool],
    rules: ToolRules,
    history: list[Call],
    decision: dict[str, Any] | None,
    *,
    cancelled: bool,
) -> Verdict:
    """Whether ``call`` may run. ``decision`` is a human's answer when the call needed approval;
    ``history`` the calls before this one that count for the tool rules."""
    refused = refusal(call, tools, decision, cancelled=cancelled)
    if refused is not None:
        return Verdict(refused)
    # an approved call was allowed by the human, whatever the rules say now
    violation = rules.violation(call.name, list(tools), history) if decision is None else None
    if violation:
        # the model must hear about it, so the loop goes on
        return Verdict(violation, heartbeat=True, violation=True)
    return parse(call)


def refusal(
    call: ToolCall, tools: dict[str, AgentTool], decision: dict[str, Any] | None, *, cancelled: bool
) -> str | None:
    """Why ``call`` does not run whatever its arguments: the run was cancelled, a human denied it,
    or no such tool."""
    if cancelled:
        return CANCELLED_BEFORE_RUN
    if decision is not None and not decision.get("approve"):
        reason = decision.get("reason")
        return "Request to call tool denied by user." + (f" Reason: {reason}" if reason else "")
    if call.name not in tools:
        return f"[ToolError] Tool {call.name!r} does not exist; available tools: {sorted(tools)}"
    return None


def parse(call: ToolCall) -> Verdict:
    """The call's arguments without the heartbeat flag, and the flag."""
    try:
        args = transcript.parse_arguments(call.arguments)
    except ValueError as exc:
        return Verdict(f"[ToolError] invalid JSON arguments for {call.name}: {exc}")
    flag = args.pop(HEARTBEAT, False)
    return Verdict(args=args, heartbeat=heartbeat_requested(flag))


def heartbeat_requested(flag: Any) -> bool:
    # models sometimes send the flag as a string; "false" must not mean yes
    return flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")


@dataclass(frozen=True)
class CallResult:
    call: ToolCall
    output: str
    status: str
    heartbeat: bool
    stdout: str = ""
    stderr: str = ""
    violation: bool = False

    def as_call(self) -> Call:
        """The call as the tool rules count it."""
        return Call(self.call.name, self.output)


def stored_result(call: ToolCall, row: dict[str, Any], status: str = SUCCESS) -> CallResult:
    """The result of ``call`` as its tool message ``row`` recorded it (``status``: when it says none)."""
    first = (row.get("tool_returns") or [{}])[0]
    meta = row.get("metadata") or {}
    return CallResult(
        call,
        row["text"],
        first.get("status", status),
        bool(meta.get("heartbeat")),
        violation=bool(meta.get("rule_violation")),
    )


def rule_history(rows: list[dict[str, Any]]) -> list[Call]:
    """Tool calls made so far in a run with their outputs, in order (the tool rules' input)."""
    # A call rejected by a rule did not happen as far as the rules are concerned (as in Letta).
    return [Call(r["name"] or "", r["text"] or "") for r in rows if not (r["metadata"] or {}).get("rule_violation")]
