"""The checked-in price table: known models priced (snapshots as their model), unknown ones None, never 0."""

from __future__ import annotations

import pytest

from o.llm import pricing


def test_known_models_and_their_snapshots_are_priced() -> None:
    assert pricing.cost_usd("openai", "gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert pricing.cost_usd("openai", "gpt-4o-mini-2024-07-18", 1000, 1000) == pytest.approx((150 + 600) / 1e6)
    # the longest known name wins: gpt-4o-mini is not priced as gpt-4o
    assert pricing.price_of("openai", "gpt-4o-mini") == pricing.Price(0.15, 0.60, 0.075)
    assert pricing.price_of("openai", "gpt-4o-2024-08-06") == pricing.Price(2.50, 10.00, 1.25)
    assert pricing.cost_usd("anthropic", "claude-3-5-sonnet-20241022", 0, 1_000_000) == pytest.approx(15.0)
    assert pricing.cost_usd("openai", "openai/gpt-4.1-nano", 1_000_000, 1_000_000) == pytest.approx(0.5)


def test_unknown_models_cost_none_and_local_ones_nothing() -> None:
    assert pricing.cost_usd("openai", "my-finetune", 10, 10) is None
    assert pricing.cost_usd("openai", "gpt-4o-minimal", 10, 10) is None  # a prefix of a name is not that model
    assert pricing.cost_usd("vllm", "gpt-4o", 10, 10) is None
    assert pricing.cost_usd(None, "gpt-4o", 10, 10) is None
    assert pricing.cost_usd("ollama", "llama3", 10_000, 10_000) == 0.0


def test_input_cached_input_and_output_tokens_are_priced_apart() -> None:
    from openai.types.completion_usage import CompletionUsage, PromptTokensDetails

    from o.evolution import owner
    from o.llm import openai_compat
    from o.llm.types import Usage

    price = pricing.Price(2.00, 8.00, 0.50)  # a known table: $ per million input, output, cached input tokens
    assert price.cost(1_000_000, 0) == pytest.approx(2.00)
    assert price.cost(0, 1_000_000) == pytest.approx(8.00)
    assert price.cost(1_000_000, 1_000_000, cached_prompt_tokens=400_000) == pytest.approx(1.20 + 0.20 + 8.00)
    assert pricing.Price(1.0, 1.0).cost(1_000_000, 0, cached_prompt_tokens=500_000) == pytest.approx(1.0)
    # the checked-in table: gpt-4o-mini $0.15 in, $0.60 out, $0.075 cached in
    config = {"model_endpoint_type": "openai", "model": "gpt-4o-mini"}
    usage = Usage(prompt_tokens=10_000, completion_tokens=2_000, total_tokens=12_000, cached_prompt_tokens=4_000)
    assert owner.usd_of(config, usage) == pytest.approx((6_000 * 0.15 + 4_000 * 0.075 + 2_000 * 0.60) / 1e6)
    assert owner.usd_of({"model_endpoint_type": "openai", "model": "unknown-model"}, usage) == 0.0
    # the provider's cached-token count reaches the usage
    raw = CompletionUsage(
        prompt_tokens=100,
        completion_tokens=5,
        total_tokens=105,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=64),
    )
    assert openai_compat._usage(raw) == Usage(100, 5, 105, 64)
