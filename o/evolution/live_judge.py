"""Judge scores on a sample of live replies: canary evidence beside errors, latency, cost and feedback.

While a canary holds traffic (and while its promotion waits for the owner), each evaluation round asks
the evolution's judge — the same judge and model as the shadow test's — to score a share of the live
replies of both revisions over the canary's window, the candidate's and the baseline's, so the two are
compared over the same turns' time (:func:`o.evolution.policy.live_checks`, Mann-Whitney like the other
metrics). Which replies are scored is a stable hash of the evolution's id and the run's id
(:func:`sampled`): a rerun of the same evolution scores the same replies, and a sampled reply is scored
once (the score is kept on its ``revision_outcomes`` row). The judge's tokens and list-price dollars count
against the evolution's budget (the owner's per-pass and per-day limits); when the budget could not pay
for another call, sampling stops for the round and the skipped replies are counted — it never rolls a
canary back on its own account.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from o.agent import transcript
from o.evolution import evaluator, owner, policy
from o.evolution.deps import EvolutionDeps
from o.evolution.journal import spend
from o.llm.client import LLMClient
from o.llm.types import Usage
from o.store import evolution as store
from o.store import runs as run_store
from o.store.evolution import Evolution

# a judge call is not started with less of the step's time left than this (a Lambda's remaining time)
STEP_MARGIN_S = 10.0
# the guess of a judge call's tokens before one has been made: the prompt's characters / 3, plus the answer
ANSWER_TOKENS = 200


def sampled(evolution_id: str, run_id: str, fraction: float) -> bool:
    """Whether the judge scores this run's reply: a stable hash of (evolution, run) below ``fraction``."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{evolution_id}:{run_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass
class JudgeRound:
    """What one round of live judging did: for the canary's figures and the evolution's history."""

    fraction: float
    seed: str  # the evolution id the sample is hashed with
    sampled: int = 0
    judged: int = 0
    no_verdict: int = 0
    deferred: int = 0  # sampled but left for a later round: the budget, the step's time or the round's cap
    tokens: int = 0
    usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "usd": round(self.usd, 6)}


def _reply(conn: Any, run_id: str) -> tuple[str, str] | None:
    """(the user's input, the agent's reply) of a live run, or None when it has no reply to judge."""
    rows = run_store.messages(conn, run_id)
    said = "\n".join(transcript.replies(rows))
    user = next((r.get("text") for r in rows if r["role"] == "user" and r.get("text")), None)
    return (user, said) if user and said else None


def _affordable(evo: Evolution, used: tuple[int, float], estimate: tuple[int, float]) -> bool:
    """Whether the evolution's budget can pay for one more call of about ``estimate`` (tokens, dollars)."""
    if used[0] + estimate[0] > int(evo.budget["max_tokens"]):
        return False
    max_usd = evo.budget.get("max_usd")
    return max_usd is None or used[1] + estimate[1] <= float(max_usd)


def _estimate(suite: evaluator.Suite, judge_config: dict[str, Any], shown: tuple[str, str]) -> tuple[int, float]:
    """About what one judge call on ``shown`` costs: (tokens, list-price dollars)."""
    guess = (len(suite.judge.instructions) + len(shown[0]) + len(shown[1])) // 3 + ANSWER_TOKENS
    return guess, owner.usd_of(judge_config, Usage(guess - ANSWER_TOKENS, ANSWER_TOKENS, guess))


def _time_left(deps: EvolutionDeps) -> bool:
    return deps.step_deadline is None or time.monotonic() < deps.step_deadline - STEP_MARGIN_S


def _picks(deps: EvolutionDeps, evo: Evolution, fraction: float, since: datetime, tried: set[int]) -> list[Any]:
    """This round's sample: both sides' unscored live turns since ``since`` that the hash picks (a reply the
    judge gave no verdict on is not asked again)."""
    assert evo.candidate_revision is not None
    with deps.db.transaction() as conn:
        rows = store.unjudged_outcomes(conn, evo.agent_id, [evo.base_revision, evo.candidate_revision], since)
    return [r for r in rows if r["id"] not in tried and sampled(evo.id, r["request_id"], fraction)]


def score_window(
    deps: EvolutionDeps,
    evo: Evolution,
    suite: evaluator.Suite,
    client: LLMClient | None,
    judge_config: dict[str, Any],
    since: datetime,
) -> JudgeRound:
    """Score this round's sample of the live replies of both revisions since ``since``."""
    rules = suite.gate.canary
    done = JudgeRound(rules.judge_sample if client is not None else 0.0, evo.id)
    if client is None or rules.judge_sample <= 0 or evo.candidate_revision is None:
        return done
    tried = set((evo.figures.get("live_judge") or {}).get("no_verdict_ids") or [])
    picks = _picks(deps, evo, rules.judge_sample, since, tried)
    done.sampled = len(picks)
    used = (evo.tokens_used, policy.usd_used(evo))
    failed: list[int] = []
    for row in picks[: rules.judge_max_per_round]:
        with deps.db.transaction() as conn:
            shown = _reply(conn, row["request_id"])
        if shown is None:
            failed.append(row["id"])
            continue
        if not _affordable(evo, used, _estimate(suite, judge_config, shown)) or not _time_left(deps):
            break
        verdict = evaluator.judge_reply(client, suite.judge, shown[0], shown[1])
        usd = owner.usd_of(judge_config, verdict.usage)
        done.tokens, done.usd = done.tokens + verdict.tokens, done.usd + usd
        used = spend(deps, evo, verdict.tokens, usd)
        if verdict.score is None:
            failed.append(row["id"])
            continue
        with deps.db.transaction() as conn:
            store.set_outcome_score(conn, row["id"], verdict.score)
        done.judged += 1
    done.no_verdict = len(failed)
    done.deferred = done.sampled - done.judged - done.no_verdict
    if failed:
        with deps.db.transaction() as conn:
            store.add_figures(conn, evo.id, {"live_judge": {"no_verdict_ids": sorted(tried | set(failed))[-500:]}})
    return done
