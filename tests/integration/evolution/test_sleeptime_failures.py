"""A sleep-time pass that keeps failing: its agent backs off, each failure is one log line."""

from __future__ import annotations

import logging

import pytest

from o.config import SleeptimeSettings
from o.evolution import loop, sleeptime
from o.evolution.sleeptime.backoff import PassBackoff
from o.evolution.sleeptime.triggers import attempt_pass
from o.store.db import Database
from tests.integration.evolution import task
from tests.servers.openai_server import OpenAIServer
from tests.servers.script import Script, fail


def test_a_failing_pass_backs_off_and_logs_one_line_per_failure(
    db: Database, deps: loop.EvolutionDeps, caplog: pytest.LogCaptureFixture
) -> None:
    now = [0.0]
    backoff = PassBackoff(base_s=30.0, clock=lambda: now[0])
    policy = SleeptimeSettings(every_n_messages=1)
    with OpenAIServer(Script(default=fail(500, "upstream down"))) as down:
        org, agent_id = task.make_agent(db, down, with_suite=False)
        with caplog.at_level(logging.DEBUG, logger="o"):
            result = attempt_pass(deps, org, agent_id, "schedule", policy, backoff)
            assert result is not None and result.status == "failed"
            calls = len(down.requests)
            # due by its messages, but backing off: no pass, no LLM call
            assert not sleeptime.after_user_messages(
                deps, org, agent_id, policy=policy, background=False, backoff=backoff
            )
            assert len(down.requests) == calls
            now[0] += 30.0
            assert sleeptime.after_user_messages(deps, org, agent_id, policy=policy, background=False, backoff=backoff)
            assert len(down.requests) > calls
            now[0] += 30.0  # the second failure in a row waits 60 s
            assert not sleeptime.after_user_messages(
                deps, org, agent_id, policy=policy, background=False, backoff=backoff
            )

    failures = [r for r in caplog.records if r.levelno >= logging.WARNING and "sleep-time" in r.getMessage()]
    assert [(r.getMessage(), r.failures, r.retry_in_s) for r in failures] == [  # type: ignore[attr-defined]
        ("sleep-time pass failed", 1, 30.0),
        ("sleep-time pass failed", 2, 60.0),
    ]
    assert all(r.exc_info is None for r in failures)
    assert all(len(r.error) < 400 for r in failures)  # type: ignore[attr-defined]
