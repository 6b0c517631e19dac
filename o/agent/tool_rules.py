"""Letta's tool rules: which tools the model is offered at each step and what ends the loop.

Kinds (Letta's ``type`` values, older names accepted): ``run_first`` (init),
``exit_loop`` (terminal), ``constrain_child_tools`` (child), ``conditional``,
``parent_last_tool``, ``max_count_per_step``, ``requires_approval``, ``continue_loop``,
``required_before_exit``. The solver is a pure function of the rules and the tool calls
made so far in the run, so a replayed step computes the same answer.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from o.errors import InvalidInput

ALIASES = {
    "InitToolRule": "run_first",
    "init": "run_first",
    "TerminalToolRule": "exit_loop",
    "terminal": "exit_loop",
    "ChildToolRule": "constrain_child_tools",
    "child": "constrain_child_tools",
    "ConditionalToolRule": "conditional",
    "ParentToolRule": "parent_last_tool",
    "parent": "parent_last_tool",
    "MaxCountPerStepToolRule": "max_count_per_step",
    "max_count": "max_count_per_step",
    "RequiresApprovalToolRule": "requires_approval",
    "approval": "requires_approval",
    "ContinueToolRule": "continue_loop",
    "continue": "continue_loop",
    "RequiredBeforeExitToolRule": "required_before_exit",
}
KINDS = {
    "run_first",
    "exit_loop",
    "constrain_child_tools",
    "conditional",
    "parent_last_tool",
    "max_count_per_step",
    "requires_approval",
    "continue_loop",
    "required_before_exit",
}


@dataclass(frozen=True)
class Call:
    """A tool call already made in this run, with what it returned."""

    name: str
    output: str = ""


@dataclass
class ToolRules:
    init: list[str] = field(default_factory=list)
    terminal: set[str] = field(default_factory=set)
    children: dict[str, list[str]] = field(default_factory=dict)
    # tool -> (output value -> next tool, default next tool, whether an unmapped output is an error)
    conditional: dict[str, tuple[dict[str, str], str | None, bool]] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    max_count: dict[str, int] = field(default_factory=dict)
    approval: set[str] = field(default_factory=set)
    continue_: set[str] = field(default_factory=set)
    required_before_exit: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: list[dict[str, Any]] | None) -> ToolRules:
        rules = cls()
        for i, rule in enumerate(raw or []):
            if not isinstance(rule, dict):
                raise InvalidInput(f"tool_rules[{i}] must be an object")
            kind = ALIASES.get(str(rule.get("type")), str(rule.get("type")))
            name = rule.get("tool_name")
            if kind not in KINDS:
                raise InvalidInput(
                    f"tool_rules[{i}]: unknown type {rule.get('type')!r}; expected one of {sorted(KINDS)}"
                )
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"tool_rules[{i}]: tool_name is required")
            if kind == "run_first":
                rules.init.append(name)
            elif kind == "exit_loop":
                rules.terminal.add(name)
            elif kind == "constrain_child_tools":
                rules.children[name] = list(rule.get("children") or [])
            elif kind == "conditional":
                mapping = {str(k): str(v) for k, v in (rule.get("child_output_mapping") or {}).items()}
                rules.conditional[name] = (mapping, rule.get("default_child"), bool(rule.get("require_output_mapping")))
            elif kind == "parent_last_tool":
                rules.parents[name] = list(rule.get("children") or [])
            elif kind == "max_count_per_step":
                limit = rule.get("max_count_limit")
                if not isinstance(limit, int) or limit < 1:
                    raise InvalidInput(f"tool_rules[{i}]: max_count_limit must be a positive integer")
                rules.max_count[name] = limit
            elif kind == "requires_approval":
                rules.approval.add(name)
            elif kind == "continue_loop":
                rules.continue_.add(name)
            else:
                rules.required_before_exit.append(name)
        return rules

    @property
    def active(self) -> bool:
        """Whether any rule depends on the calls already made (else the history need not be read)."""
        return bool(
            self.init
            or self.children
            or self.conditional
            or self.parents
            or self.max_count
            or self.required_before_exit
        )

    # -- which tools are offered -------------------------------------------------------------------

    def allowed(self, available: list[str], history: list[Call]) -> list[str]:
        """Tools the model may call next, in ``available`` order. Falls back to every tool (minus
        those used up) when the rules leave nothing, as Letta does."""
        counts = Counter(c.name for c in history)
        usable = [t for t in available if t not in self.max_count or counts[t] < self.max_count[t]]
        constrained: list[str] | None = None
        if not history and self.init:
            constrained = self.init
        elif history:
            last = history[-1]
            if last.name in self.conditional:
                mapping, default, _ = self.conditional[last.name]
                target = _lookup(mapping, last.output) or default
                constrained = [target] if target else None
            elif last.name in self.children:
                constrained = self.children[last.name]
        candidates = [t for t in usable if constrained is None or t in constrained]
        # A parent rule: the tool may only follow one of its parents.
        last_name = history[-1].name if history else None
        candidates = [t for t in candidates if t not in self.parents or last_name in self.parents[t]]
        return candidates or usable

    def forced(self, allowed: list[str], history: list[Call]) -> str | None:
        """The one tool the model must call, when the rules pin it down."""
        pinned = (not history and bool(self.init)) or (
            bool(history) and (history[-1].name in self.children or history[-1].name in self.conditional)
        )
        return allowed[0] if pinned and len(allowed) == 1 else None

    def violation(self, name: str, available: list[str], history: list[Call]) -> str | None:
        """Why calling ``name`` now breaks a rule, or None."""
        allowed = self.allowed(available, history)
        if name in allowed:
            return None
        if name in self.max_count and Counter(c.name for c in history)[name] >= self.max_count[name]:
            return f"[ToolConstraintError] {name} may be called at most {self.max_count[name]} times per turn"
        return f"[ToolConstraintError] Cannot call {name}, valid tools include: {allowed}."

    def conditional_error(self, call: Call) -> str | None:
        if call.name not in self.conditional:
            return None
        mapping, default, required = self.conditional[call.name]
        if required and _lookup(mapping, call.output) is None:
            return f"[ToolConstraintError] output {call.output!r} of {call.name} matches no rule mapping"
        del default
        return None

    # -- what a call means for the loop ------------------------------------------------------------

    def requires_approval(self, name: str) -> bool:
        return name in self.approval

    def is_terminal(self, name: str) -> bool:
        return name in self.terminal

    def forces_continue(self, name: str) -> bool:
        return name in self.continue_ or name in self.children or name in self.conditional

    def uncalled_required(self, history: list[Call]) -> list[str]:
        called = {c.name for c in history}
        return [t for t in self.required_before_exit if t not in called]


def _normalise(output: str) -> str:
    """A conditional rule maps a tool's return value; tools return JSON or plain text."""
    text = output.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, str) else value


def _lookup(mapping: dict[str, str], output: str) -> str | None:
    """The next tool for ``output``: an exact key first, then ignoring case ("True" maps a true)."""
    key = _normalise(output)
    if key in mapping:
        return mapping[key]
    folded = {k.lower(): v for k, v in mapping.items()}
    return folded.get(key.lower())
