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
from collections.abc import Callable
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


@dataclass(frozen=True)
class Call:
    """A tool call already made in this run, with what it returned."""

    name: str
    output: str = ""


@dataclass(frozen=True)
class Conditional:
    """Which tool follows, by what the tool returned."""

    by_output: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    # an output no key matches is an error, not a fall-through to ``default``
    require_match: bool = False

    def next_tool(self, output: str) -> str | None:
        return _lookup(self.by_output, output) or self.default


@dataclass
class ToolRules:
    init: list[str] = field(default_factory=list)
    terminal: set[str] = field(default_factory=set)
    children: dict[str, list[str]] = field(default_factory=dict)
    conditional: dict[str, Conditional] = field(default_factory=dict)
    parents: dict[str, list[str]] = field(default_factory=dict)
    max_count: dict[str, int] = field(default_factory=dict)
    approval: set[str] = field(default_factory=set)
    continue_: set[str] = field(default_factory=set)
    required_before_exit: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: list[dict[str, Any]] | None) -> ToolRules:
        rules = cls()
        for i, rule in enumerate(raw or []):
            where = f"tool_rules[{i}]"
            if not isinstance(rule, dict):
                raise InvalidInput(f"{where} must be an object")
            kind = ALIASES.get(str(rule.get("type")), str(rule.get("type")))
            if kind not in KINDS:
                raise InvalidInput(f"{where}.type {rule.get('type')!r} is unknown; expected one of {sorted(KINDS)}")
            name = rule.get("tool_name")
            if not isinstance(name, str) or not name:
                raise InvalidInput(f"{where}.tool_name is required (the tool the rule is about)")
            _ADD_RULE[kind](rules, name, rule, where)
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
        usable = self._not_used_up(available, history)
        constrained = self._constrained_to(history)
        last_name = history[-1].name if history else None
        candidates = [t for t in usable if (constrained is None or t in constrained) and self._may_follow(t, last_name)]
        return candidates or usable

    def _not_used_up(self, available: list[str], history: list[Call]) -> list[str]:
        counts = Counter(c.name for c in history)
        return [t for t in available if t not in self.max_count or counts[t] < self.max_count[t]]

    def _may_follow(self, tool: str, last_name: str | None) -> bool:
        """A parent rule: the tool may only follow one of its parents."""
        return tool not in self.parents or last_name in self.parents[tool]

    def _constrained_to(self, history: list[Call]) -> list[str] | None:
        """The only tools the rules allow next, or None when they do not narrow the choice."""
        if not history:
            return self.init or None
        last = history[-1]
        if last.name in self.conditional:
            target = self.conditional[last.name].next_tool(last.output)
            return [target] if target else None
        return self.children.get(last.name)

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
        rule = self.conditional.get(call.name)
        if rule is not None and rule.require_match and _lookup(rule.by_output, call.output) is None:
            return f"[ToolConstraintError] output {call.output!r} of {call.name} matches no rule mapping"
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


# -- reading one rule of each kind into ToolRules ---------------------------------------------------


def _add_run_first(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.init.append(name)


def _add_exit_loop(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.terminal.add(name)


def _tool_names(rule: dict[str, Any], key: str, where: str) -> list[str]:
    names = rule.get(key) or []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise InvalidInput(f"{where}.{key} must be a list of tool names")
    return names


def _add_children(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.children[name] = _tool_names(rule, "children", where)


def _add_conditional(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    mapping = rule.get("child_output_mapping") or {}
    if not isinstance(mapping, dict) or not all(isinstance(v, str) and v for v in mapping.values()):
        raise InvalidInput(f"{where}.child_output_mapping must map outputs to tool names")
    default = rule.get("default_child")
    if default is not None and not (isinstance(default, str) and default):
        raise InvalidInput(f"{where}.default_child must be a tool name")
    by_output = {str(k): v for k, v in mapping.items()}
    rules.conditional[name] = Conditional(by_output, default, bool(rule.get("require_output_mapping")))


def _add_parents(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.parents[name] = _tool_names(rule, "children", where)


def _add_max_count(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    limit = rule.get("max_count_limit")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidInput(f"{where}.max_count_limit must be a positive integer")
    rules.max_count[name] = limit


def _add_approval(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.approval.add(name)


def _add_continue(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.continue_.add(name)


def _add_required_before_exit(rules: ToolRules, name: str, rule: dict[str, Any], where: str) -> None:
    rules.required_before_exit.append(name)


_ADD_RULE: dict[str, Callable[[ToolRules, str, dict[str, Any], str], None]] = {
    "run_first": _add_run_first,
    "exit_loop": _add_exit_loop,
    "constrain_child_tools": _add_children,
    "conditional": _add_conditional,
    "parent_last_tool": _add_parents,
    "max_count_per_step": _add_max_count,
    "requires_approval": _add_approval,
    "continue_loop": _add_continue,
    "required_before_exit": _add_required_before_exit,
}
KINDS = frozenset(_ADD_RULE)
