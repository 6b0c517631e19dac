from __future__ import annotations

from datetime import UTC, datetime

from o.agent.prompt import CORE_MEMORY_VARIABLE, compose

BLOCKS = [
    {"label": "persona", "description": "Who I am.", "value": "A helpful bot.", "char_limit": 100, "read_only": False},
    {"label": "policies", "description": None, "value": "Never lie.", "char_limit": 50, "read_only": True},
]
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_layout_has_blocks_sizes_and_metadata() -> None:
    text = compose("Be kind.", BLOCKS, WHEN, recall=12, archival=3)
    assert text.startswith("Be kind.\n\n<memory_blocks>")
    persona = text[text.index("<persona>") : text.index("</persona>")]
    assert "<description>\nWho I am.\n</description>" in persona
    assert "- chars_current=14\n- chars_limit=100" in persona
    assert "<value>\nA helpful bot.\n</value>" in persona
    assert "- read_only=true" in text[text.index("<policies>") :]
    assert "12 previous messages" in text and "3 total memories" in text
    assert "2026-01-02 03:04:05 AM" in text
    assert "<tool_usage_rules>" not in text


def test_core_memory_variable_places_memory_and_rules_are_rendered() -> None:
    text = compose(
        f"Intro.\n{CORE_MEMORY_VARIABLE}\nOutro.",
        BLOCKS,
        None,
        0,
        0,
        [
            {"type": "exit_loop", "tool_name": "send_message"},
            {"type": "constrain_child_tools", "tool_name": "search", "children": ["fetch", "read"]},
            {"type": "requires_approval", "tool_name": "pay", "prompt_template": "Ask before paying."},
        ],
    )
    assert text.startswith("Intro.\n<memory_blocks>") and text.endswith("</tool_usage_rules>\nOutro.")
    assert "- send_message ends your turn." in text
    assert "- After search, call one of: fetch, read." in text
    assert "- Ask before paying." in text
    assert "last modified: never" in text
