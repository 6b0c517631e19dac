"""When a failing sleep-time pass is tried again (pure decisions, a fake clock)."""

from __future__ import annotations

import logging

import pytest

from o.evolution.sleeptime.backoff import PassBackoff, first_line, retry_delay
from o.evolution.sleeptime.result import PassResult


def test_the_wait_doubles_with_each_failure_up_to_the_cap() -> None:
    assert [retry_delay(n, 30.0, 600.0) for n in range(7)] == [0.0, 30.0, 60.0, 120.0, 240.0, 480.0, 600.0]
    assert retry_delay(10_000, 30.0, 3600.0) == 3600.0


def _failed(agent_id: str, error: str = "LLMError: upstream down") -> PassResult:
    return PassResult("sleeptime-1", agent_id, "schedule", "failed", error=error)


def test_a_failed_agent_waits_its_turn_and_a_success_forgives(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    backoff = PassBackoff(base_s=10.0, cap_s=40.0, clock=lambda: now[0])
    assert backoff.ready("a")
    with caplog.at_level(logging.WARNING):
        backoff.record("a", _failed("a"))
    assert not backoff.ready("a") and backoff.ready("b")
    now[0] = 9.9
    assert not backoff.ready("a")
    now[0] = 10.0
    assert backoff.ready("a")
    backoff.record("a", _failed("a"))  # second in a row: 20 s
    now[0] = 29.0
    assert not backoff.ready("a")
    now[0] = 30.0
    assert backoff.ready("a")
    for _ in range(5):
        backoff.record("a", _failed("a"))
    now[0] += 39.0
    assert not backoff.ready("a")
    now[0] += 1.0  # capped at 40 s
    assert backoff.ready("a")
    backoff.record("a", PassResult("sleeptime-2", "a", "schedule", "completed"))
    assert backoff.ready("a")
    backoff.record("a", _failed("a"))  # counted from one again
    now[0] += 10.0
    assert backoff.ready("a")

    [record] = [r for r in caplog.records if r.getMessage() == "sleep-time pass failed"][:1]
    assert record.exc_info is None  # one line, no traceback
    assert record.failures == 1 and record.retry_in_s == 10.0  # type: ignore[attr-defined]


def test_a_logged_error_is_its_first_line_and_short() -> None:
    assert first_line("ValueError: bad\nTraceback (most recent call last):\n  ...") == "ValueError: bad"
    assert len(first_line("x" * 5000)) == 300
    assert first_line("  ") == "unknown error"
