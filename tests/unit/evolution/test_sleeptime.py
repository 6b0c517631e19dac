"""Sleep-time decisions without a database: when a pass is due, when a pass starts an evolution, and which
built-in tools the pass offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from o.config import SleeptimeSettings
from o.evolution.sleeptime import passes, rethink, triggers
from o.store.sleeptime import AgentNews
from o.tools import builtin

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = SleeptimeSettings(every_n_messages=3, interval_seconds=3600)


def _news(new_user: int, last: datetime | None) -> AgentNews:
    return AgentNews("org-1", "agent-1", new_user, last)


def test_due_after_n_user_messages_or_when_the_interval_elapsed() -> None:
    assert triggers.due_trigger(_news(3, NOW), POLICY, NOW) == "messages"
    assert triggers.due_trigger(_news(1, None), POLICY, NOW) == "schedule"
    assert triggers.due_trigger(_news(1, NOW - timedelta(hours=1)), POLICY, NOW) == "schedule"
    assert triggers.due_trigger(_news(2, NOW - timedelta(minutes=59)), POLICY, NOW) is None


def test_an_evolution_after_every_nth_pass_with_cases_and_none_running() -> None:
    assert passes.evolution_due(4, 2, has_cases=True, evolving=False)
    assert not passes.evolution_due(3, 2, has_cases=True, evolving=False)
    assert not passes.evolution_due(4, 2, has_cases=False, evolving=False)
    assert not passes.evolution_due(4, 2, has_cases=True, evolving=True)
    assert not passes.evolution_due(4, 0, has_cases=True, evolving=False)


def test_the_pass_offers_built_in_tools_that_agents_do_not_get_by_default() -> None:
    offered = {spec.name: spec for spec in rethink.TOOLS}
    assert set(offered) == {"memory_rethink", "archival_memory_insert", "archival_memory_delete", rethink.FINISH}
    for name, spec in offered.items():
        assert (spec.description, spec.parameters) == (
            builtin.BUILTINS[name].description,
            builtin.BUILTINS[name].parameters,
        )
    defaults = {name for names in builtin.DEFAULT_TOOLS.values() for name in names}
    defaults |= set(builtin.DEFAULT_FOR_OTHER_TYPES)
    assert not {"archival_memory_delete", rethink.FINISH} & defaults


def test_facts_recorded_by_the_pass_carry_the_sleeptime_tag() -> None:
    assert rethink._with_fact_tag({"content": "x"}) == {"content": "x", "tags": ["sleeptime"]}
    assert rethink._with_fact_tag({"content": "x", "tags": ["a"]})["tags"] == ["a", "sleeptime"]
    assert rethink._with_fact_tag({"content": "x", "tags": ["sleeptime"]})["tags"] == ["sleeptime"]
