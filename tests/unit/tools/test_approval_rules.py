"""An agent's approval requirement for one tool is one ``requires_approval`` tool rule, added or removed."""

from __future__ import annotations

from o.agent.tool_rules import ToolRules
from o.tools.catalog import requires_approval, with_approval

RULES = [
    {"tool_name": "send_message", "type": "exit_loop"},
    {"tool_name": "pay", "type": "RequiresApprovalToolRule"},
]


def test_added_once_and_read_by_the_loop() -> None:
    rules = with_approval(RULES, "wire", True)
    assert rules[-1] == {"tool_name": "wire", "type": "requires_approval"}
    assert with_approval(rules, "wire", True) == rules
    parsed = ToolRules.parse(rules)
    assert parsed.requires_approval("wire") and parsed.requires_approval("pay")
    assert not parsed.requires_approval("send_message")


def test_removed_in_any_of_its_spellings_and_other_rules_kept() -> None:
    assert requires_approval(RULES, "pay")
    rules = with_approval(RULES, "pay", False)
    assert rules == [{"tool_name": "send_message", "type": "exit_loop"}]
    assert not requires_approval(rules, "pay")
    assert with_approval(rules, "pay", False) == rules
