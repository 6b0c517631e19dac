"""The owner's evolution policy for one agent: what may change, what it may spend, when, and who approves.

An evolution is the agent changing itself; the owner says how far it may go. The policy is stored per
agent (``evolution_policies``), set over the API and CLI, and never through the agent's own tools. It
is applied when an evolution starts (its token budget, its schedule), when a proposal is parsed (what
it may touch), and before the canary and the promotion (human approval, through the API or CLI).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from o.errors import Conflict
from o.llm import pricing
from o.llm.types import Usage
from o.store import evolution as store
from o.store.db import Conn

Changeable = Literal["system", "blocks", "tool_rules", "tool_ids", "llm_config"]
CHANGEABLE: tuple[Changeable, ...] = ("system", "blocks", "tool_rules", "tool_ids", "llm_config")
# triggers that are an owner's own request; any other (sleep-time) is the schedule's
MANUAL_TRIGGERS = frozenset({"api", "cli", "manual"})


class OwnerPolicy(BaseModel):
    """How far the agent may evolve itself. The defaults leave every evolvable key open and no limits
    beyond the operator's (:class:`o.config.EvolutionSettings`)."""

    model_config = ConfigDict(extra="forbid")

    may_change: list[Changeable] = Field(
        default_factory=lambda: list(CHANGEABLE),
        description="the configuration an evolution may change: the system prompt, the memory blocks' layout and "
        "limits, the tool rules, the tool set, the model and its settings",
    )
    max_tokens_per_pass: int | None = Field(default=None, ge=1)
    max_tokens_per_day: int | None = Field(
        default=None, ge=1, description="over the agent's evolutions started in the last 24 h"
    )
    max_usd_per_pass: float | None = Field(
        default=None,
        gt=0,
        description="at the list price of each model called (input, cached input and output tokens priced apart)",
    )
    max_usd_per_day: float | None = Field(default=None, gt=0)
    schedule: Literal["scheduled", "manual"] = Field(
        default="scheduled", description="manual: only the owner starts evolutions (sleep-time never does)"
    )
    min_hours_between: float = Field(default=0.0, ge=0, le=24 * 365, description="between scheduled evolutions")
    approval: Literal["none", "canary", "promotion"] = Field(
        default="none",
        description="canary: a human approves before any live traffic reaches the candidate (and so its "
        "promotion); promotion: before the candidate becomes the agent's revision",
    )
    webhook_url: str | None = Field(default=None, max_length=2000, description="told of every promotion and rollback")

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("webhook_url must be an http(s) URL with a host")
        return value

    def needs_approval(self, gate: Literal["canary", "promotion"]) -> bool:
        """Whether ``gate`` waits for a human: approving the canary is asked for by both gates' settings."""
        return self.approval == "canary" or (gate == "promotion" and self.approval == "promotion")


def load(conn: Conn, agent_id: str) -> OwnerPolicy:
    stored = store.get_policy(conn, agent_id)
    return OwnerPolicy.model_validate(stored) if stored is not None else OwnerPolicy()


def save(conn: Conn, organization_id: str, agent_id: str, policy: OwnerPolicy) -> OwnerPolicy:
    store.put_policy(conn, organization_id, agent_id, policy.model_dump(mode="json"))
    return policy


def usd_of(llm_config: dict[str, Any] | None, usage: Usage) -> float:
    """What ``usage`` of the model in ``llm_config`` costs at list price: input, cached input and output tokens
    each at their own price. A model without a list price costs 0 here (a free model: a dollar limit cannot
    hold it; the token limits still do)."""
    config = llm_config or {}
    price = pricing.price_of(config.get("model_endpoint_type"), config.get("model"))
    if price is None:
        return 0.0
    return price.cost(usage.prompt_tokens, usage.completion_tokens, usage.cached_prompt_tokens)


def pass_token_limit(conn: Conn, policy: OwnerPolicy, agent_id: str, now: datetime, operator_limit: int) -> int:
    """The tokens the next pass may spend: the operator's limit, the owner's per-pass limit, and what is
    left of the owner's daily limit. Raises Conflict when the day's tokens are spent."""
    limits = [operator_limit] + ([policy.max_tokens_per_pass] if policy.max_tokens_per_pass else [])
    if policy.max_tokens_per_day:
        used = store.tokens_since(conn, agent_id, now - timedelta(days=1))
        left = policy.max_tokens_per_day - used
        if left <= 0:
            raise Conflict(
                f"the agent's daily evolution budget is spent ({used} of {policy.max_tokens_per_day} tokens in 24 h)"
            )
        limits.append(left)
    return min(limits)


def pass_usd_limit(conn: Conn, policy: OwnerPolicy, agent_id: str, now: datetime) -> float | None:
    """The dollars the next pass may spend (per pass, and what is left of the day's), or None without a
    dollar limit. Raises Conflict when the day's dollars are spent."""
    limits = [policy.max_usd_per_pass] if policy.max_usd_per_pass else []
    if policy.max_usd_per_day:
        used = store.usd_since(conn, agent_id, now - timedelta(days=1))
        left = policy.max_usd_per_day - used
        if left <= 0:
            raise Conflict(
                f"the agent's daily evolution budget is spent (${used:.6f} of ${policy.max_usd_per_day} in 24 h)"
            )
        limits.append(left)
    return min(limits) if limits else None


def check_schedule(conn: Conn, policy: OwnerPolicy, agent_id: str, trigger: str, now: datetime) -> None:
    """Raise Conflict when the owner's schedule does not allow an evolution started by ``trigger`` now."""
    if trigger in MANUAL_TRIGGERS:
        return
    if policy.schedule == "manual":
        raise Conflict(f"the owner's policy allows only manual evolutions, not one started by {trigger}")
    last = store.last_started(conn, agent_id)
    if last is not None and policy.min_hours_between and now - last < timedelta(hours=policy.min_hours_between):
        raise Conflict(f"the last evolution started less than {policy.min_hours_between} h ago")


def refused_changes(policy: OwnerPolicy, changes: set[str]) -> list[str]:
    """The keys of a proposal the owner's policy does not let an evolution change."""
    return sorted(changes - set(policy.may_change))
