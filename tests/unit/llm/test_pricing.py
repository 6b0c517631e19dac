"""The checked-in price table: known models priced (snapshots as their model), unknown ones None, never 0."""

from __future__ import annotations

import pytest

from o.llm import pricing


def test_known_models_and_their_snapshots_are_priced() -> None:
    assert pricing.cost_usd("openai", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert pricing.cost_usd("openai", "gpt-4o-mini-2024-07-18", 1000, 1000) == pytest.approx((150 + 600) / 1e6)
    # the longest known name wins: gpt-4o-mini is not priced as gpt-4o
    assert pricing.price_of("openai", "gpt-4o-mini") == pricing.Price(0.15, 0.60)
    assert pricing.price_of("openai", "gpt-4o-2024-08-06") == pricing.Price(2.50, 10.00)
    assert pricing.cost_usd("anthropic", "claude-3-5-sonnet-20241022", 0, 1_000_000) == pytest.approx(15.0)
    assert pricing.cost_usd("openai", "openai/gpt-4.1-nano", 1_000_000, 1_000_000) == pytest.approx(0.5)


def test_unknown_models_cost_none_and_local_ones_nothing() -> None:
    assert pricing.cost_usd("openai", "my-finetune", 10, 10) is None
    assert pricing.cost_usd("openai", "gpt-4o-minimal", 10, 10) is None  # a prefix of a name is not that model
    assert pricing.cost_usd("vllm", "gpt-4o", 10, 10) is None
    assert pricing.cost_usd(None, "gpt-4o", 10, 10) is None
    assert pricing.cost_usd("ollama", "llama3", 10_000, 10_000) == 0.0
