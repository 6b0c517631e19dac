from __future__ import annotations

import pytest

from o.agent.tool_rules import ALIASES, KINDS, Call, Conditional, ToolRules
from o.errors import InvalidInput

TOOLS = ["send_message", "search", "fetch", "summarize", "check"]


def test_no_rules_offer_everything() -> None:
    rules = ToolRules.parse([])
    assert rules.allowed(TOOLS, []) == TOOLS
    assert rules.forced(TOOLS, []) is None


def test_init_rule_forces_the_first_call_only() -> None:
    rules = ToolRules.parse([{"type": "run_first", "tool_name": "search"}])
    assert rules.allowed(TOOLS, []) == ["search"]
    assert rules.forced(["search"], []) == "search"
    assert rules.allowed(TOOLS, [Call("search")]) == TOOLS


def test_child_rule_constrains_the_next_call() -> None:
    rules = ToolRules.parse([{"type": "constrain_child_tools", "tool_name": "search", "children": ["fetch", "check"]}])
    history = [Call("search")]
    assert rules.allowed(TOOLS, history) == ["fetch", "check"]
    assert rules.violation("send_message", TOOLS, history).startswith("[ToolConstraintError]")
    assert rules.violation("fetch", TOOLS, history) is None
    assert rules.forces_continue("search")


def test_conditional_rule_routes_on_output() -> None:
    rules = ToolRules.parse(
        [
            {
                "type": "conditional",
                "tool_name": "check",
                "child_output_mapping": {"true": "fetch", "false": "summarize"},
                "default_child": "send_message",
            }
        ]
    )
    assert rules.allowed(TOOLS, [Call("check", "true")]) == ["fetch"]
    assert rules.allowed(TOOLS, [Call("check", "false")]) == ["summarize"]
    assert rules.allowed(TOOLS, [Call("check", "maybe")]) == ["send_message"]
    assert rules.forced(["fetch"], [Call("check", "true")]) == "fetch"
    # Letta clients often key booleans as Python prints them
    titled = ToolRules.parse(
        [
            {
                "type": "conditional",
                "tool_name": "check",
                "child_output_mapping": {"True": "fetch"},
                "require_output_mapping": True,
            }
        ]
    )
    assert titled.allowed(TOOLS, [Call("check", "true")]) == ["fetch"]
    assert titled.conditional_error(Call("check", "true")) is None
    assert "matches no rule" in (titled.conditional_error(Call("check", "nope")) or "")


def test_max_count_per_step_and_parent() -> None:
    rules = ToolRules.parse(
        [
            {"type": "max_count_per_step", "tool_name": "search", "max_count_limit": 2},
            {"type": "parent_last_tool", "tool_name": "summarize", "children": ["fetch"]},
        ]
    )
    assert "search" in rules.allowed(TOOLS, [Call("search")])
    assert "search" not in rules.allowed(TOOLS, [Call("search"), Call("search")])
    assert "at most 2" in (rules.violation("search", TOOLS, [Call("search"), Call("search")]) or "")
    assert "summarize" not in rules.allowed(TOOLS, [])
    assert "summarize" in rules.allowed(TOOLS, [Call("fetch")])


def test_terminal_approval_continue_required() -> None:
    rules = ToolRules.parse(
        [
            {"type": "exit_loop", "tool_name": "send_message"},
            {"type": "requires_approval", "tool_name": "fetch"},
            {"type": "continue_loop", "tool_name": "search"},
            {"type": "required_before_exit", "tool_name": "check"},
        ]
    )
    assert rules.is_terminal("send_message") and not rules.is_terminal("search")
    assert rules.requires_approval("fetch")
    assert rules.forces_continue("search")
    assert rules.uncalled_required([Call("search")]) == ["check"]
    assert rules.uncalled_required([Call("check")]) == []


def test_letta_class_names_are_accepted() -> None:
    rules = ToolRules.parse(
        [
            {"type": "TerminalToolRule", "tool_name": "x"},
            {"type": "InitToolRule", "tool_name": "y"},
        ]
    )
    assert rules.terminal == {"x"} and rules.init == ["y"]


@pytest.mark.parametrize(
    "raw",
    [
        [{"type": "nope", "tool_name": "x"}],
        [{"type": "exit_loop"}],
        [{"type": "max_count_per_step", "tool_name": "x", "max_count_limit": 0}],
        ["exit_loop"],
        [{}],
        [{"type": "max_count_per_step", "tool_name": "x", "max_count_limit": True}],
        [{"type": "constrain_child_tools", "tool_name": "x", "children": 5}],
        [{"type": "constrain_child_tools", "tool_name": "x", "children": "abc"}],
        [{"type": "parent_last_tool", "tool_name": "x", "children": [1]}],
        [{"type": "conditional", "tool_name": "x", "child_output_mapping": ["y"]}],
        [{"type": "conditional", "tool_name": "x", "child_output_mapping": {"true": 5}}],
        [{"type": "conditional", "tool_name": "x", "default_child": 5}],
    ],
)
def test_bad_rules_are_named(raw: list) -> None:
    """Each is refused where the agent is created or edited, not on every later step of its loop."""
    with pytest.raises(InvalidInput) as err:
        ToolRules.parse(raw)
    assert "tool_rules[0]" in err.value.message


def test_the_field_at_fault_is_named() -> None:
    with pytest.raises(InvalidInput) as err:
        ToolRules.parse([{"type": "constrain_child_tools", "tool_name": "x", "children": 5}])
    assert err.value.message.startswith("tool_rules[0].children")


def test_conditional_keys_of_any_json_scalar_are_read_as_text() -> None:
    rules = ToolRules.parse(
        [
            {
                "type": "conditional",
                "tool_name": "check",
                "child_output_mapping": {"true": "fetch"},
                "default_child": None,
            }
        ]
    )
    assert rules.allowed(TOOLS, [Call("check", "true")]) == ["fetch"]


def test_everything_filtered_falls_back_to_usable_tools() -> None:
    rules = ToolRules.parse([{"type": "constrain_child_tools", "tool_name": "search", "children": ["missing"]}])
    assert rules.allowed(TOOLS, [Call("search")]) == TOOLS


def test_every_alias_names_a_kind_the_parser_reads() -> None:
    assert set(ALIASES.values()) <= KINDS
    for kind in KINDS:
        assert ToolRules.parse([{"type": kind, "tool_name": "x", "max_count_limit": 1}]) != ToolRules()


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as err:
        ToolRules.parse([{"type": "nope", "tool_name": "x"}])
    assert "'nope'" in err.value.message and "'run_first'" in err.value.message


def test_conditional_next_tool_falls_back_to_its_default() -> None:
    rule = Conditional({"true": "fetch", "42": "check"}, default="send_message")
    assert rule.next_tool('"TRUE"') == "fetch"
    assert rule.next_tool("42") == "check"
    assert rule.next_tool("nope") == "send_message"
    assert Conditional({"true": "fetch"}).next_tool("nope") is None


def test_a_parent_rule_allows_the_tool_only_after_a_parent() -> None:
    rules = ToolRules.parse([{"type": "parent_last_tool", "tool_name": "summarize", "children": ["search", "fetch"]}])
    assert "summarize" in rules.allowed(TOOLS, [Call("search")])
    assert "summarize" not in rules.allowed(TOOLS, [Call("check")])
    # a parent rule with nothing else left falls back to every usable tool
    assert rules.allowed(["summarize"], []) == ["summarize"]
