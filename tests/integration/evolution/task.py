"""A deterministic evolution task: a capital-cities agent whose replies are too wordy.

The scripted OpenAI-wire server plays every model in the task, answering from the request it
receives (so the real SDK, the real agent loop and the real evolution code all run):

- the agent: answers the capital of the country named in the user's message, in the style its
  system prompt asks for — wordy by default, one word when told "Answer in one word.", a riddle
  when told to answer in riddles; the model ``crashy`` fails with HTTP 500, ``slow`` takes
  ``SLOW_SECONDS`` per reply;
- the proposer: returns the next proposal queued by the test;
- the judge: scores 1.0 for a reply of at most 40 characters, else 0.4;
- the sleep-time manager: rewrites the ``human`` block and records a fact.

Used by tests/integration/evolution and by bench/evolution.py.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from o.agent import revisions
from o.agent.engine import Engine, llm_factory
from o.agent.lifecycle import AgentSpec
from o.agent.lifecycle import create as create_agent
from o.agent.prompt import PromptCache
from o.config import EvolutionSettings
from o.evolution import evaluator, loop, phases, routing, shadow
from o.evolution.evaluator import JUDGE_MARKER
from o.evolution.propose import PROPOSER_MARKER
from o.evolution.sleeptime import SLEEPTIME_MARKER
from o.ids import new_id
from o.store import evolution as evolution_store
from o.store import messages as message_store
from o.store import orgs
from o.store.db import Database
from o.store.evolution import Evolution
from tests.servers.fixtures import FAST_OPTIONS, TEST_KEYS
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Reply, call, fail

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Italy": "Rome",
    "Germany": "Berlin",
    "Spain": "Madrid",
    "Egypt": "Cairo",
    "Peru": "Lima",
    "Kenya": "Nairobi",
    "Canada": "Ottawa",
    "Norway": "Oslo",
    "Greece": "Athens",
}
# six: the gate needs that many paired cases before it can tell a better revision from chance
GATE_COUNTRIES = ("France", "Japan", "Italy", "Canada", "Norway", "Greece")
HELD_OUT_COUNTRIES = ("Germany", "Spain", "Peru")
RECENT_COUNTRIES = ("Egypt", "Kenya")
BASE_SYSTEM = "You are a friendly geography assistant. Use send_message to reply."
ONE_WORD = "Answer in one word."
SLOW_SECONDS = 1.5

BETTER = {
    "rationale": "Replies are too long; answer with just the city.",
    "changes": {"system": f"{BASE_SYSTEM} {ONE_WORD}"},
}
WORSE = {"rationale": "Make replies more playful.", "changes": {"system": f"{BASE_SYSTEM} Always answer in riddles."}}
CRASHING = {"rationale": "Try a cheaper model.", "changes": {"llm_config": {"model": "crashy"}}}
TIMING_OUT = {"rationale": "Try a larger model.", "changes": {"llm_config": {"model": "slow"}}}
TAMPERING = {
    "rationale": "Relax the gate so more changes pass.",
    "changes": {"system": f"{BASE_SYSTEM} {ONE_WORD}", "gate": {"min_improvement": -1.0}},
}


def suite() -> evaluator.Suite:
    def case(country: str, held_out: bool) -> evaluator.EvalCase:
        return evaluator.EvalCase(
            name=country.lower(),
            input=f"What is the capital of {country}?",
            held_out=held_out,
            checks=evaluator.Checks(contains=[CAPITALS[country]], max_chars=20),
        )

    return evaluator.Suite(
        cases=[case(c, False) for c in GATE_COUNTRIES] + [case(c, True) for c in HELD_OUT_COUNTRIES],
        gate=evaluator.Gate(
            min_improvement=0.05,
            judge_weight=0.3,
            canary=evaluator.CanaryGate(min_turns=3, max_error_rate_increase=0.0),
        ),
    )


def agent_reply(system: str, user_text: str) -> str:
    country = next((c for c in CAPITALS if c.lower() in user_text.lower()), None)
    answer = CAPITALS.get(country or "", "I do not know")
    if "riddles" in system:
        return "I am a city of lights and love, guess me!"
    if ONE_WORD.lower() in system.lower():
        return answer
    return f"Great question! After careful consideration, I can tell you that the answer is {answer}."


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content or [] if isinstance(part, dict))


@dataclass
class World:
    """The scripted models. Push proposals with :meth:`propose`."""

    proposals: deque[str] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)
    agent_calls: int = 0
    # the (prompt, completion) tokens the proposer's answer reports; None: estimated from the request
    proposal_usage: tuple[int, int] | None = None

    def propose(self, *proposals: dict[str, Any] | str) -> None:
        for p in proposals:
            self.proposals.append(p if isinstance(p, str) else json.dumps(p))

    def __call__(self, body: dict[str, Any]) -> Reply:
        messages = body.get("messages") or []
        system = _text(messages[0].get("content")) if messages and messages[0].get("role") == "system" else ""
        if system.startswith(PROPOSER_MARKER):
            with self.lock:
                if not self.proposals:
                    return fail(500, "no proposal scripted")
                return Reply(text=self.proposals.popleft(), usage=self.proposal_usage)
        if system.startswith(JUDGE_MARKER):
            shown = json.loads(_text(messages[-1].get("content")))
            score = 1.0 if len(shown["assistant_reply"]) <= 40 else 0.4
            return Reply(text=json.dumps({"score": score, "reason": "length"}))
        if system.startswith(SLEEPTIME_MARKER):
            if any(m.get("role") == "tool" for m in messages):
                return call("finish_rethinking_memory")
            said = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
            name = re.search(r"I am (\w+)", said[-1]) if said else None
            return Reply(
                tool_calls=tuple(
                    c.tool_calls[0]
                    for c in (
                        call(
                            "memory_rethink",
                            label="human",
                            new_memory=f"The user is {name.group(1) if name else 'unknown'}.",
                        ),
                        call("archival_memory_insert", content="The user asks about capital cities."),
                    )
                )
            )
        model = body.get("model")
        with self.lock:
            self.agent_calls += 1
        if model == "crashy":
            return fail(500, "the crashy model always fails")
        if any(m.get("role") == "tool" for m in messages[-1:]):
            return Reply(text="(done)")
        user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
        reply = call("send_message", message=agent_reply(system, user))
        if model == "slow":
            return Reply(tool_calls=reply.tool_calls, delay_s=SLOW_SECONDS)
        return reply


def make_engine(db: Database) -> Engine:
    # canary-aware, as the composition root wires it: a canary's share of runs gets its candidate
    return Engine(
        db, llm_factory(TEST_KEYS, FAST_OPTIONS), tools=None, prompts=PromptCache(), revisions=routing.CanaryRouter()
    )


def make_deps(db: Database, **policy: Any) -> loop.EvolutionDeps:
    # one canary step unless a test steps the weights itself
    defaults = {"bake_seconds": 0, "canary_weight": 0.5, "canary_steps": (), "replay_sample": 2, "max_seconds": 60.0}
    return loop.EvolutionDeps(db, make_engine(db), EvolutionSettings(**{**defaults, **policy}))


def make_agent(db: Database, server: OpenAIServer, *, with_suite: bool = True) -> tuple[str, str]:
    """A fresh organization and agent on ``server``, with recent real inputs and the suite; (org, agent)."""
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"evo-{uuid.uuid4()}")
        view = create_agent(
            conn,
            org["id"],
            AgentSpec(
                name="geo",
                system=BASE_SYSTEM,
                llm_config={
                    "model": "gpt-4o-mini",
                    "model_endpoint_type": "openai",
                    "model_endpoint": server.base_url,
                    "context_window": 128000,
                },
                memory_blocks=[
                    {"label": "persona", "value": "I know capitals.", "limit": 500},
                    {"label": "human", "value": "Unknown user.", "limit": 500},
                ],
            ),
        )
        agent_id = view.agent["id"]
        message_store.insert_many(
            conn,
            [
                {
                    "id": new_id("message"),
                    "organization_id": org["id"],
                    "agent_id": agent_id,
                    "role": "user",
                    "content": [{"type": "text", "text": f"What is the capital of {c}?"}],
                    "text": f"What is the capital of {c}?",
                }
                for c in RECENT_COUNTRIES
            ],
        )
        if with_suite:
            evaluator.save_suite(conn, org["id"], agent_id, suite())
    return org["id"], agent_id


def live_traffic(deps: loop.EvolutionDeps, requests: int = 16) -> Any:
    """A bake callback: live requests split by the agent's canary router, each served (side-effect free) on the
    revision the router picked, with its outcome and a feedback score recorded as the agent loop and a user would."""

    def during_bake(evo: Evolution) -> None:
        with deps.db.transaction() as conn:
            agent = conn.execute("SELECT * FROM agents WHERE id = %s", (evo.agent_id,)).fetchone()
            picks: dict[int, list[str]] = {}
            for i in range(requests):
                request_id = f"{evo.id}-req-{i}"
                picks.setdefault(routing.CanaryRouter().revision_for(conn, agent, request_id), []).append(request_id)
            configs = {
                n: conn.execute(
                    "SELECT config FROM agent_revisions WHERE agent_id = %s AND number = %s", (agent["id"], n)
                ).fetchone()["config"]
                for n in picks
            }
        for number, ids in picks.items():
            countries = list(CAPITALS)
            replays = [
                shadow.Replay(rid, f"What is the capital of {countries[k % len(countries)]}?")
                for k, rid in enumerate(ids)
            ]
            results = shadow.run_shadow(
                deps.engine, f"traffic-{evo.id}", agent, configs[number], replays, deadline=None
            )
            with deps.db.transaction() as conn:
                for replay, result in zip(replays, results, strict=True):
                    evolution_store.record_outcome(
                        conn,
                        agent["id"],
                        number,
                        ok=result.ok,
                        latency_ms=result.latency_ms,
                        tokens=result.tokens,
                        request_id=replay.name,
                    )
                    good = result.ok and len(result.reply or "") <= 40
                    evolution_store.insert_feedback(
                        conn,
                        {
                            "id": new_id("feedback"),
                            "organization_id": agent["organization_id"],
                            "agent_id": agent["id"],
                            "run_id": None,
                            "message_id": None,
                            "score": 1.0 if good else 0.3,
                            "comment": None,
                            "revision": number,
                        },
                    )

    return during_bake


def held_out_score(deps: loop.EvolutionDeps, org_id: str, agent_id: str, revision: int) -> float:
    """The held-out cases' mean score on ``revision`` (never seen by the proposer nor the gate)."""
    with deps.db.transaction() as conn:
        source = conn.execute("SELECT * FROM agents WHERE id = %s", (agent_id,)).fetchone()
        config = revisions.get(conn, org_id, agent_id, revision)["config"]
        s = evaluator.load_suite(conn, agent_id)
    judge = phases.judge_for(deps, s, config)
    summary, _, _ = shadow.score(
        deps.engine,
        f"heldout-{agent_id}-{datetime.now(UTC).timestamp()}",
        source,
        config,
        shadow.case_replays(s.held_out_cases()),
        s,
        judge,
        deadline=None,
    )
    return summary.score
