from __future__ import annotations

import pytest

from o.config import settings_from
from o.llm.client import LLMError, RetryPolicy, retry_after_seconds, with_retries
from o.llm.keys import SettingsKeySource, StaticKeySource


def _classify(exc: Exception) -> tuple[LLMError, float | None] | None:
    if isinstance(exc, ConnectionError):
        return LLMError("transient", provider="p", status=503, retryable=True), None
    if isinstance(exc, PermissionError):
        return LLMError("denied", provider="p", status=403, retryable=False), None
    return None


def test_retries_transient_errors_then_succeeds_with_growing_backoff() -> None:
    outcomes: list[Exception | str] = [ConnectionError(), ConnectionError(), "ok"]
    slept: list[float] = []

    def call() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(call, RetryPolicy(3, 0.1, 10), _classify, slept.append) == "ok"
    assert len(slept) == 2
    assert 0.075 <= slept[0] <= 0.1 and 0.15 <= slept[1] <= 0.2


def test_gives_up_after_max_retries_with_attempt_count() -> None:
    def call() -> None:
        raise ConnectionError

    with pytest.raises(LLMError) as info:
        with_retries(call, RetryPolicy(2, 0, 0), _classify, lambda _: None)
    assert info.value.retryable and info.value.attempts == 3 and info.value.status == 503


def test_non_retryable_fails_at_once_and_foreign_errors_pass_through() -> None:
    calls = 0

    def denied() -> None:
        nonlocal calls
        calls += 1
        raise PermissionError

    with pytest.raises(LLMError, match="denied"):
        with_retries(denied, RetryPolicy(5, 0, 0), _classify, lambda _: None)
    assert calls == 1
    with pytest.raises(KeyError):
        with_retries(lambda: {}["x"], RetryPolicy(5, 0, 0), _classify, lambda _: None)


def test_server_retry_after_hint_is_honoured_within_a_minute() -> None:
    policy = RetryPolicy(3, 0.5, 8)
    assert policy.delay(1, 2.0) == 2.0
    assert policy.delay(1, 3600.0) <= 0.5
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}) is None


def test_backoff_is_capped() -> None:
    assert RetryPolicy(10, 1.0, 4.0).delay(8, None) <= 4.0


def test_llm_error_maps_to_a_502_json_error() -> None:
    error = LLMError("openai returned HTTP 500", provider="openai", status=500, retryable=True)
    assert error.status_code == 502 and error.code == "llm_error"
    assert error.details == {"provider": "openai", "upstream_status": 500, "retryable": True}


def test_env_and_static_key_sources() -> None:
    env = SettingsKeySource(
        settings_from({"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "  ", "GROQ_API_KEY": "g"}).keys
    )
    assert env.api_key("openai") == "sk-1"
    assert env.api_key("anthropic") is None
    assert env.api_key("groq") == "g"
    assert env.api_key("ollama") is None
    static = StaticKeySource({"anthropic": "a", "OPENAI_API_KEY": "o"})
    assert (static.api_key("anthropic"), static.api_key("openai")) == ("a", "o")
