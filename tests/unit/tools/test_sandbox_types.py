from __future__ import annotations

import pytest

from o.tools.sandbox import Limits, ToolInvocation, ToolResult
from o.tools.sandbox.base import truncate


def test_invocation_and_result_survive_the_wire() -> None:
    invocation = ToolInvocation("def f():\n  pass", "f", {"a": [1]}, {"K": "v"}, Limits(cpu_seconds=3), 99)
    assert ToolInvocation.from_dict(invocation.to_dict()) == invocation
    result = ToolResult("timeout", "Error", "out", "err", "stopped", 12.5, ("netns", "uid"))
    assert ToolResult.from_dict(result.to_dict()) == result
    assert not result.ok and ToolResult("success", "1").ok


def test_unknown_status_and_limits_fields() -> None:
    with pytest.raises(ValueError, match="unknown tool result status"):
        ToolResult.from_dict({"status": "maybe"})
    assert Limits.from_dict({"cpu_seconds": 2, "unknown": 1}) == Limits(cpu_seconds=2)


def test_truncate_says_how_much_was_cut() -> None:
    assert truncate("short", 10) == "short"
    cut = truncate("x" * 500, 60)
    assert len(cut) == 60 and "500 characters" in cut
