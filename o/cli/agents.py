"""`o agents list|create|show`: agents on a running O, through its API (see o/cli/remote.py)."""

from __future__ import annotations

import argparse
from typing import Any

from o.cli import remote, tables

LIST_COLUMNS = (("id", "ID"), ("name", "NAME"), ("model", "MODEL"), ("created", "CREATED"))


def _model(agent: Any) -> str:
    config = agent.llm_config
    return str(agent.model or (config.handle if config else None) or (config.model if config else "-"))


def agents_list(args: argparse.Namespace) -> int:
    api = remote.client(args)
    rows = [
        {
            "id": a.id,
            "name": a.name or "-",
            "model": _model(a),
            "created": a.created_at.strftime("%Y-%m-%d %H:%M") if a.created_at else "-",
        }
        for a in api.agents.list(limit=args.limit)
    ]
    print("\n".join(tables.lines(rows, LIST_COLUMNS)))
    return 0


def agents_create(args: argparse.Namespace) -> int:
    api = remote.client(args)
    blocks = [{"label": "human", "value": args.human}, {"label": "persona", "value": args.persona}]
    options: dict[str, Any] = {"name": args.name, "memory_blocks": blocks}
    if args.model:
        options["model"] = args.model
    agent = api.agents.create(**options)
    print(agent.id)
    return 0


def show_lines(agent: Any) -> list[str]:
    """An agent as `o agents show` prints it: who it is, its model, tools and memory blocks."""
    out = [
        f"{agent.name}  ({agent.id})",
        f"model:   {_model(agent)}",
        f"tools:   {', '.join(sorted(t.name or '?' for t in agent.tools or [])) or '-'}",
        "memory blocks:",
    ]
    for block in agent.memory.blocks if agent.memory else []:
        value = str(block.value or "")
        out.append(f"  [{block.label}] ({len(value)}/{block.limit} chars)")
        out.extend(f"    {line}" for line in value.splitlines() or [""])
    return out


def agents_show(args: argparse.Namespace) -> int:
    api = remote.client(args)
    print("\n".join(show_lines(remote.find_agent(api, args.agent))))
    return 0


def add_parser(sub: Any) -> None:
    p = sub.add_parser("agents", help="list, create and show agents on a running O (over its API)")
    agents = p.add_subparsers(dest="agents_command", required=True)
    q = agents.add_parser("list", help="the agents: id, name, model, created")
    remote.add_flags(q)
    q.add_argument("--limit", type=int, default=100)
    q.set_defaults(func=agents_list)
    q = agents.add_parser("create", help="create an agent and print its id")
    remote.add_flags(q)
    q.add_argument("name")
    q.add_argument("--model", help="a handle from GET /v1/models/, e.g. openai/gpt-4o-mini (default: O's)")
    q.add_argument("--human", default="", help="the human memory block's first value")
    q.add_argument("--persona", default="I am a helpful assistant.", help="the persona memory block's value")
    q.set_defaults(func=agents_create)
    q = agents.add_parser("show", help="one agent: model, tools, memory blocks")
    remote.add_flags(q)
    q.add_argument("agent", metavar="AGENT", help="the agent's id or name")
    q.set_defaults(func=agents_show)
