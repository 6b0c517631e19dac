"""`o chat AGENT`: talk to an agent from the terminal, over the API of a running O.

Each line typed is sent as a user message and the reply streams back token by token; the agent's tool
calls are shown as they complete, its memory edits marked ``✎``. Lines starting with ``/`` are commands
(``/help``). Reads lines until end of input, so it also takes a script on stdin."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from letta_client import Letta

from o.cli import agents, chart, remote, tables

# Tools whose calls change what the agent remembers: shown as memory edits.
MEMORY_TOOLS = frozenset(
    {
        "core_memory_append",
        "core_memory_replace",
        "memory_insert",
        "memory_replace",
        "memory_rethink",
        "memory",
        "archival_memory_insert",
    }
)
HELP = """commands:
  /memory          the agent's memory blocks
  /search QUERY    search the agent's archival memory
  /history         the agent's revisions and evolutions, oldest first
  /help            this
  /quit            leave (so does end of input)"""


def _field(value: Any, name: str) -> Any:
    """A field of a streamed chunk's part: the SDK gives a model, or a plain dict when no type matched."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(str(_field(part, "text") or "") for part in content)
    return str(content or "")


@dataclass
class _Call:
    name: str = ""
    arguments: str = ""


@dataclass
class Transcript:
    """Writes one streamed reply: its text as it arrives, each tool call when its result comes back."""

    out: TextIO
    calls: dict[str, _Call] = field(default_factory=dict)
    last_call: str = ""
    open_line: bool = False

    def _end_line(self) -> None:
        if self.open_line:
            self.out.write("\n")
            self.open_line = False

    def chunk(self, chunk: Any) -> None:
        kind = _field(chunk, "message_type")
        if kind == "assistant_message":
            if not self.open_line:
                self.out.write("agent> ")
                self.open_line = True
            self.out.write(_text(_field(chunk, "content")))
        elif kind == "tool_call_message" and _field(chunk, "tool_call") is not None:
            self._call_piece(_field(chunk, "tool_call"))
        elif kind == "tool_return_message":
            self._returned(chunk)
        elif kind == "error_message":
            self._end_line()
            self.out.write(f"error: {_field(chunk, 'message') or chunk}\n")
        self.out.flush()

    def _call_piece(self, piece: Any) -> None:
        key = _field(piece, "tool_call_id") or self.last_call
        self.last_call = key
        call = self.calls.setdefault(key, _Call())
        call.name = call.name or (_field(piece, "name") or "")
        call.arguments += _field(piece, "arguments") or ""

    def _returned(self, chunk: Any) -> None:
        call = self.calls.pop(_field(chunk, "tool_call_id") or self.last_call, None)
        call = call or _Call(name=_field(chunk, "name") or "?")
        self._end_line()
        status, result = _field(chunk, "status"), _field(chunk, "tool_return")
        self.out.write(describe_call(call.name, call.arguments, status, result) + "\n")

    def finish(self) -> None:
        self._end_line()
        self.out.flush()


def describe_call(name: str, arguments: str, status: str | None, result: Any) -> str:
    """One tool call as the chat shows it: a memory edit with its block and text, any other call with its
    arguments and result."""
    try:
        args = json.loads(arguments) if arguments else {}
    except ValueError:
        args = {"arguments": arguments}
    args = {k: v for k, v in args.items() if k != "request_heartbeat"} if isinstance(args, dict) else {}
    failed = " (failed)" if status == "error" else ""
    if name in MEMORY_TOOLS:
        where = "archival memory" if name == "archival_memory_insert" else f"block {args.get('label', '?')}"
        text = args.get("content") or args.get("new_str") or args.get("new_memory") or args.get("command") or ""
        return f"  ✎ memory edit{failed}: {name} → {where}: {tables.short(text, 100)}"
    shown = ", ".join(f"{k}={tables.short(json.dumps(v), 40)}" for k, v in args.items())
    return f"  ⚙ {name}({shown}){failed} → {tables.short(result, 100)}"


def revision_line(rev: dict[str, Any]) -> str:
    current = " (current)" if rev.get("current") else ""
    what = tables.short(rev.get("rationale") or ", ".join(rev.get("diff") or {}) or "created", 70)
    return f"revision {rev['number']}{current} by {rev['author']}: {what}"


def evolution_line(evo: dict[str, Any]) -> str:
    """Revision tried, status, shadow score (current → candidate), canary weight and decision."""
    shadow = (evo.get("figures") or {}).get("shadow") or {}
    score = (shadow.get("candidate") or {}).get("score")
    weight = (evo.get("canary") or {}).get("weight")
    parts = [f"evolution {evo['id']}: {evo['base_revision']} → {evo.get('candidate_revision') or '-'}"]
    parts.append(f"status {evo['status']}")
    if score is not None:
        parts.append(f"shadow score {(shadow.get('current') or {}).get('score')} → {score}")
    if weight is not None:
        parts.append(f"canary weight {weight}")
    if evo.get("decision"):
        parts.append(f"decision {evo['decision']}" + (f" ({evo['reason']})" if evo.get("reason") else ""))
    return ", ".join(parts)


def history_lines(api: Letta, agent_id: str, evolutions: list[dict[str, Any]] | None = None) -> list[str]:
    """The agent's revisions and evolutions as one timeline (oldest first)."""
    if evolutions is None:
        evolutions = remote.get_json(api, f"/v1/agents/{agent_id}/evolutions")
    events = [(r["created_at"], revision_line(r)) for r in remote.get_json(api, f"/v1/agents/{agent_id}/revisions")]
    events += [(e["created_at"], evolution_line(e)) for e in evolutions]
    return [f"{when[:19].replace('T', ' ')}  {what}" for when, what in sorted(events)] or ["(no history yet)"]


def search_lines(api: Letta, agent_id: str, query: str) -> list[str]:
    if not query:
        return ["usage: /search QUERY"]
    hits = api.agents.passages.search(agent_id, query=query).results
    return [f"  - {tables.short(hit.content, 110)}" for hit in hits] or ["(nothing found)"]


def command(api: Letta, agent_id: str, line: str) -> list[str] | None:
    """What a ``/command`` prints; None for ``/quit``."""
    name, _, rest = line[1:].partition(" ")
    if name in ("quit", "exit", "q"):
        return None
    if name == "memory":
        return agents.show_lines(api.agents.retrieve(agent_id))[3:]
    if name == "search":
        return search_lines(api, agent_id, rest.strip())
    if name == "history":
        return history_lines(api, agent_id)
    return HELP.splitlines()


def send(api: Letta, agent_id: str, text: str, out: TextIO) -> None:
    transcript = Transcript(out)
    stream = api.agents.messages.stream(agent_id, messages=[{"role": "user", "content": text}], stream_tokens=True)
    for chunk in stream:
        transcript.chunk(chunk)
    transcript.finish()


def chat(args: argparse.Namespace) -> int:
    api = remote.client(args)
    agent = remote.find_agent(api, args.agent)
    interactive = sys.stdin.isatty()
    print(f"chatting with {agent.name} ({agent.id}); /help for commands, /quit or Ctrl-D to leave")
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = sys.stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            shown = command(api, agent.id, line)
            if shown is None:
                break
            print("\n".join(shown))
            continue
        send(api, agent.id, line, sys.stdout)
    return 0


def history(args: argparse.Namespace) -> int:
    """`o evolve history AGENT [--png FILE]`: the timeline `/history` shows in a chat, and its chart."""
    api = remote.client(args)
    agent = remote.find_agent(api, args.agent)
    evolutions = remote.get_json(api, f"/v1/agents/{agent.id}/evolutions?limit=1000")
    print("\n".join(history_lines(api, agent.id, evolutions)))
    if args.png is not None:
        width, height = chart.write_png(args.png, agent.name or agent.id, evolutions)
        print(f"chart: {args.png} ({width}x{height} px)", file=sys.stderr)
    return 0


def add_history_flags(p: argparse.ArgumentParser) -> None:
    remote.add_flags(p)
    p.add_argument("agent", metavar="AGENT", help="the agent's id or name")
    p.add_argument(
        "--png",
        type=Path,
        metavar="FILE",
        help="also write a chart: shadow score per revision with its interval, canary weight over time "
        "(needs matplotlib: pip install 'o-agents[chart]')",
    )


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="talk to an agent from the terminal (streams replies, shows memory edits)")
    remote.add_flags(p)
    p.add_argument("agent", metavar="AGENT", help="the agent's id or name")
    p.set_defaults(func=chat)
