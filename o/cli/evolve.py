"""`o evolve start|list|show|stop|rollback`: self-evolution from the command line.

Works on the database directly (like `o keys create`), so it runs next to `o serve` or against RDS.
``start`` runs the evolution in this process and prints each phase as it happens.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from o import runtime
from o.agent import lifecycle, revisions
from o.cli import chat
from o.cli.settings import from_args
from o.errors import InvalidInput, NotFound, OError
from o.evolution import approval, loop, owner
from o.store import evolution as store
from o.store import orgs
from o.store.db import Conn
from o.store.evolution import Evolution, EvolutionStatus
from o.store.pages import Page


def _org_id(conn: Conn, name: str) -> str:
    org = orgs.find(conn, name)
    if org is None:
        raise NotFound(f"organization {name!r} not found")
    return str(org["id"])


def _with_runtime(args: argparse.Namespace, work: Callable[[runtime.Runtime, str], int]) -> int:
    rt = runtime.start(from_args(args))
    try:
        with rt.db.transaction() as conn:
            org = _org_id(conn, args.org)
        return work(rt, org)
    except OError as exc:
        print(f"o evolve: {exc.message}", file=sys.stderr)
        return 1
    finally:
        rt.close()


def _deps(rt: runtime.Runtime, **overrides: Any) -> loop.EvolutionDeps:
    return runtime.evolution_deps(rt.settings, runtime.agent_engine(rt.settings, rt.db), **overrides)


def _progress(evolution_id: str, phase: str, message: str) -> None:
    print(f"[{phase:>11}] {message}", flush=True)


def _figures(evo: Evolution) -> str:
    shadow = evo.figures.get("shadow") or {}
    if not shadow:
        return "-"
    return f"shadow {shadow.get('current', {}).get('score')} -> {shadow.get('candidate', {}).get('score')}"


def start(args: argparse.Namespace) -> int:
    def work(rt: runtime.Runtime, org: str) -> int:
        deps = _deps(rt, progress=_progress)
        budget = {
            "max_tokens": args.max_tokens,
            "max_seconds": args.max_seconds,
            "canary_weight": args.canary_weight,
            "canary_steps": args.canary_steps,
            "bake_seconds": args.bake_seconds,
        }
        evo = loop.start(deps, org, args.agent_id, trigger="cli", budget=budget)
        _progress(evo.id, "started", f"evolution {evo.id} of revision {evo.base_revision}")
        if deps.executions is not None:
            loop.launch(deps, evo.id)
            print(f"running as a Step Functions execution; follow it with: o evolve show {args.agent_id} {evo.id}")
            return 0
        final = loop.run_local(deps, evo.id)
        print(f"{final.decision}: {final.reason}")
        print(f"figures: {_figures(final)}; tokens used {final.tokens_used}")
        return 0 if final.decision == EvolutionStatus.PROMOTED else 3

    return _with_runtime(args, work)


def list_cmd(args: argparse.Namespace) -> int:
    def work(rt: runtime.Runtime, org: str) -> int:
        with rt.db.transaction() as conn:
            lifecycle.require(conn, org, args.agent_id)
            found = store.list_for_agent(conn, args.agent_id, Page(limit=args.limit, order="desc"))
        if args.json:
            print(json.dumps([evo.as_dict() for evo in found], default=str, indent=2))
            return 0
        print(f"{'evolution':<46} {'status':<12} {'rev':>9}  {'figures':<28} reason")
        for evo in found:
            revs = f"{evo.base_revision}->{evo.candidate_revision or '-'}"
            status = evo.status.value
            print(f"{evo.id:<46} {status:<12} {revs:>9}  {_figures(evo):<28} {(evo.reason or '')[:80]}")
        return 0

    return _with_runtime(args, work)


def show(args: argparse.Namespace) -> int:
    def work(rt: runtime.Runtime, org: str) -> int:
        with rt.db.transaction() as conn:
            evo = store.get(conn, args.evolution_id, organization_id=org)
            if evo is None or evo.agent_id != args.agent_id:
                raise NotFound(f"evolution {args.evolution_id} not found")
            events = store.events(conn, args.evolution_id)
        for e in events:
            print(f"{e['created_at']:%H:%M:%S} [{e['phase']:>11}] {e['message']}")
        row = evo.as_dict()
        print(
            json.dumps(
                {k: row[k] for k in ("status", "decision", "reason", "diff", "figures", "tokens_used")},
                default=str,
                indent=2,
            )
        )
        return 0

    return _with_runtime(args, work)


def stop(args: argparse.Namespace) -> int:
    def work(rt: runtime.Runtime, org: str) -> int:
        final = loop.stop(_deps(rt), org, args.evolution_id)
        print(f"{final.id}: {final.status.value} ({final.reason})")
        return 0

    return _with_runtime(args, work)


def approve(args: argparse.Namespace) -> int:
    """The owner's decision on the canary or promotion an evolution waits at."""

    def work(rt: runtime.Runtime, org: str) -> int:
        deps = _deps(rt)
        with rt.db.transaction() as conn:
            evo = store.get(conn, args.evolution_id, organization_id=org)
        if evo is None or evo.agent_id != args.agent_id:
            raise NotFound(f"evolution {args.evolution_id} not found")
        decided = approval.decide(deps, org, args.evolution_id, not args.reject, args.comment)
        if args.reject:
            decided = loop.stop(deps, org, args.evolution_id, f"the owner rejected it: {args.comment or 'no reason'}")
        print(f"{decided.id}: {decided.status.value} ({'rejected' if args.reject else 'approved'})")
        return 0

    return _with_runtime(args, work)


def policy_cmd(args: argparse.Namespace) -> int:
    """Show the agent's owner policy, or set it from JSON (``--set '{"approval": "promotion"}'``)."""

    def work(rt: runtime.Runtime, org: str) -> int:
        with rt.db.transaction() as conn:
            lifecycle.require(conn, org, args.agent_id, for_update=args.set is not None)
            if args.set is not None:
                try:
                    wanted = owner.OwnerPolicy.model_validate_json(args.set)
                except ValidationError as exc:
                    raise InvalidInput(f"not a valid evolution policy: {exc}") from exc
                owner.save(conn, org, args.agent_id, wanted)
            shown = owner.load(conn, args.agent_id)
        print(json.dumps(shown.model_dump(mode="json"), indent=2))
        return 0

    return _with_runtime(args, work)


def rollback(args: argparse.Namespace) -> int:
    def work(rt: runtime.Runtime, org: str) -> int:
        loop.stop_active(_deps(rt), org, args.agent_id, f"user rolled back to revision {args.revision}")
        with rt.db.transaction() as conn:
            rev = revisions.rollback(conn, org, args.agent_id, args.revision, rationale=args.rationale)
        print(f"agent {args.agent_id} now runs revision {rev['number']} (= revision {args.revision})")
        return 0

    return _with_runtime(args, work)


def add_parser(sub: Any, db_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("evolve", help="self-evolution: start, list, show, stop, approve, policy, roll back")
    evolve = p.add_subparsers(dest="evolve_command", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        db_flags(q)
        q.add_argument("--org", default="default", help="organization name or id (default: default)")

    q = evolve.add_parser("start", help="run one evolution now, showing each phase")
    common(q)
    q.add_argument("agent_id")
    q.add_argument("--max-tokens", type=int)
    q.add_argument("--max-seconds", type=float)
    q.add_argument("--canary-weight", type=float, help="share of live traffic for the candidate (0..1)")
    q.add_argument(
        "--canary-steps", type=float, nargs="*", help="the weights the canary then steps up to (e.g. 0.25 0.5)"
    )
    q.add_argument("--bake-seconds", type=int, help="how long the canary takes traffic before the decision")
    q.set_defaults(func=start)

    q = evolve.add_parser("list", help="evolutions of an agent with status and figures")
    common(q)
    q.add_argument("agent_id")
    q.add_argument("--limit", type=int, default=20)
    q.add_argument("--json", action="store_true")
    q.set_defaults(func=list_cmd)

    q = evolve.add_parser("show", help="one evolution's events, diff and figures")
    common(q)
    q.add_argument("agent_id")
    q.add_argument("evolution_id")
    q.set_defaults(func=show)

    q = evolve.add_parser("stop", help="stop an evolution and roll it back now")
    common(q)
    q.add_argument("evolution_id")
    q.set_defaults(func=stop)

    q = evolve.add_parser("approve", help="approve (or --reject) the canary or promotion an evolution waits at")
    common(q)
    q.add_argument("agent_id")
    q.add_argument("evolution_id")
    q.add_argument("--reject", action="store_true", help="roll the evolution back instead")
    q.add_argument("--comment")
    q.set_defaults(func=approve)

    q = evolve.add_parser("policy", help="the owner's evolution policy of an agent: show, or --set JSON")
    common(q)
    q.add_argument("agent_id")
    q.add_argument(
        "--set", help='the whole policy as JSON, e.g. \'{"approval": "promotion", "max_tokens_per_day": 100000}\''
    )
    q.set_defaults(func=policy_cmd)

    q = evolve.add_parser("rollback", help="run an earlier revision again (as a new revision)")
    common(q)
    q.add_argument("agent_id")
    q.add_argument("revision", type=int)
    q.add_argument("--rationale")
    q.set_defaults(func=rollback)

    q = evolve.add_parser("history", help="the agent's revisions and evolutions as a timeline (over the API)")
    chat.add_history_flags(q)
    q.set_defaults(func=chat.history)
