"""The system prompt: the agent's instructions, its core memory blocks and memory metadata.

Compiled in Letta's layout (``<memory_blocks>`` with each block's description, size and
value, then the archival/recall sizes). Compiling reads the blocks and two counts; it is
cached per (agent_id, version) because the foundation bumps ``agents.version`` on every
change that alters the prompt (a block edit, a new system text, a tool change).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from o.memory.files import views as file_views
from o.store import agents as agent_store
from o.store.db import Conn

# Letta substitutes this variable in a custom system prompt; without it memory is appended.
CORE_MEMORY_VARIABLE = "{CORE_MEMORY}"


@dataclass(frozen=True)
class CompiledPrompt:
    agent_id: str
    version: int
    text: str


def render_blocks(blocks: list[dict[str, Any]]) -> str:
    parts = ["<memory_blocks>", "The following memory blocks are currently engaged in your core memory unit:", ""]
    for block in blocks:
        label = block["label"]
        parts.append(f"<{label}>")
        parts.append("<description>")
        parts.append(block.get("description") or "")
        parts.append("</description>")
        parts.append("<metadata>")
        if block.get("read_only"):
            parts.append("- read_only=true")
        parts.append(f"- chars_current={len(block['value'])}")
        parts.append(f"- chars_limit={block['char_limit']}")
        parts.append("</metadata>")
        parts.append("<value>")
        parts.append(block["value"])
        parts.append("</value>")
        parts.append(f"</{label}>")
        parts.append("")
    parts.append("</memory_blocks>")
    return "\n".join(parts)


def zone(name: str | None) -> ZoneInfo:
    """The agent's time zone (Letta's ``timezone``); UTC when unset or unknown (names are checked when saved)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def render_metadata(
    last_edit: datetime | None,
    recall_count: int,
    archival_count: int,
    revision: int | None = None,
    timezone: str | None = None,
) -> str:
    """Letta's <memory_metadata>; dates and times in the agent's ``timezone``."""
    tz = zone(timezone)
    when = last_edit.astimezone(tz).strftime("%Y-%m-%d %I:%M:%S %p %Z%z").strip() if last_edit else "never"
    lines = [
        "<memory_metadata>",
        f"- The current system date is: {datetime.now(tz=tz):%B %d, %Y}",
        f"- Memory blocks were last modified: {when}",
        f"- {recall_count} previous messages between you and the user are stored in recall memory "
        "(use tools to access them)",
        f"- {archival_count} total memories you created are stored in archival memory (use tools to access them)",
    ]
    if revision is not None:
        # the agent can tie its behaviour to its evolution history (archival passages tagged "evolution")
        lines.append(
            f"- You are running revision {revision} of your configuration (instructions, memory layout, "
            "tools, model settings); your archival memory records how and why earlier revisions changed"
        )
    lines.append("</memory_metadata>")
    return "\n".join(lines)


def render_tool_rules(rules: list[dict[str, Any]]) -> str:
    """Letta's <tool_usage_rules>: the model is told the constraints the loop enforces."""
    lines = []
    for rule in rules:
        kind, name = rule.get("type"), rule.get("tool_name")
        if rule.get("prompt_template"):
            lines.append(f"- {rule['prompt_template']}")
        elif kind in ("run_first", "InitToolRule"):
            lines.append(f"- Call {name} first.")
        elif kind in ("exit_loop", "TerminalToolRule"):
            lines.append(f"- {name} ends your turn.")
        elif kind in ("constrain_child_tools", "ChildToolRule"):
            lines.append(f"- After {name}, call one of: {', '.join(rule.get('children') or [])}.")
        elif kind == "max_count_per_step":
            lines.append(f"- Call {name} at most {rule.get('max_count_limit')} times per turn.")
        elif kind == "requires_approval":
            lines.append(f"- {name} runs only after a human approves the call.")
        elif kind == "required_before_exit":
            lines.append(f"- Call {name} before ending your turn.")
        elif kind == "continue_loop":
            lines.append(f"- After {name} you continue with another step.")
    if not lines:
        return ""
    return "<tool_usage_rules>\n" + "\n".join(lines) + "\n</tool_usage_rules>"


def compose(
    system: str,
    blocks: list[dict[str, Any]],
    last_edit: datetime | None,
    recall: int,
    archival: int,
    tool_rules: list[dict[str, Any]] | None = None,
    revision: int | None = None,
    timezone: str | None = None,
    files: str = "",
) -> str:
    memory = render_blocks(blocks) + "\n\n" + render_metadata(last_edit, recall, archival, revision, timezone)
    if files:  # the attached folders' files and the open ones' windows (o.memory.files.views)
        memory += "\n\n" + files
    rules = render_tool_rules(tool_rules or [])
    if rules:
        memory += "\n\n" + rules
    if CORE_MEMORY_VARIABLE in system:
        return system.replace(CORE_MEMORY_VARIABLE, memory)
    return f"{system}\n\n{memory}" if system else memory


@dataclass(frozen=True)
class MemoryParts:
    """What the prompt is compiled from besides the agent row: its blocks and memory sizes."""

    blocks: list[dict[str, Any]]
    recall: int
    archival: int
    last_edit: datetime | None


def memory_parts(conn: Conn, agent_id: str) -> MemoryParts:
    row = agent_store.memory_summary(conn, agent_id)
    return MemoryParts(row["blocks"], int(row["recall"]), int(row["archival"]), row["last_edit"])


def compile_prompt(conn: Conn, agent: dict[str, Any]) -> CompiledPrompt:
    parts = memory_parts(conn, agent["id"])
    text = compose(
        agent["system"],
        parts.blocks,
        parts.last_edit,
        parts.recall,
        parts.archival,
        agent.get("tool_rules") or [],
        agent.get("revision"),
        agent.get("timezone"),
        file_views.render(conn, agent["id"]),
    )
    return CompiledPrompt(agent["id"], int(agent["version"]), text)


class PromptCache:
    """Compiled prompts keyed by (agent_id, version): a stale entry is simply never asked for again."""

    def __init__(self, max_entries: int = 1024) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int], CompiledPrompt] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, conn: Conn, agent: dict[str, Any]) -> CompiledPrompt:
        key = (agent["id"], int(agent["version"]))
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return hit
        compiled = compile_prompt(conn, agent)
        with self._lock:
            self.misses += 1
            self._entries[key] = compiled
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


# One per process: the API server and a warm Lambda reuse it across requests.
default_cache = PromptCache()
