"""What a model call costs: a small, checked-in table of list prices (USD per million tokens).

The table is deliberately short and hand-kept: a step's cost is an estimate for comparing revisions
and spotting expensive agents, not a bill. A model the table does not know costs ``None`` (unknown),
never 0; a dated snapshot (``gpt-4o-mini-2024-07-18``) is priced as the model it snapshots. Models
served by Ollama run on the operator's own hardware and have no per-token price (0).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    # prompt tokens read from the provider's prompt cache, where the provider prices them apart; None: as input
    cached_input_per_mtok: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0) -> float:
        """USD for a call: input, cached input (a part of the prompt) and output, each at its own price."""
        cached = min(max(cached_prompt_tokens, 0), prompt_tokens)
        cached_price = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        dollars = (prompt_tokens - cached) * self.input_per_mtok + cached * cached_price
        return (dollars + completion_tokens * self.output_per_mtok) / 1_000_000


# provider (llm_config.model_endpoint_type) -> model name -> list price (input, output, cached input), as published
# by the provider
PRICES: dict[str, dict[str, Price]] = {
    "openai": {
        "gpt-4o": Price(2.50, 10.00, 1.25),
        "gpt-4o-mini": Price(0.15, 0.60, 0.075),
        "gpt-4.1": Price(2.00, 8.00, 0.50),
        "gpt-4.1-mini": Price(0.40, 1.60, 0.10),
        "gpt-4.1-nano": Price(0.10, 0.40, 0.025),
        "gpt-4-turbo": Price(10.00, 30.00),
        "gpt-3.5-turbo": Price(0.50, 1.50),
        "o1": Price(15.00, 60.00, 7.50),
        "o3": Price(2.00, 8.00, 0.50),
        "o3-mini": Price(1.10, 4.40, 0.55),
        "o4-mini": Price(1.10, 4.40, 0.275),
    },
    "anthropic": {
        "claude-3-haiku": Price(0.25, 1.25, 0.03),
        "claude-3-5-haiku": Price(0.80, 4.00, 0.08),
        "claude-3-5-sonnet": Price(3.00, 15.00, 0.30),
        "claude-3-7-sonnet": Price(3.00, 15.00, 0.30),
        "claude-sonnet-4": Price(3.00, 15.00, 0.30),
        "claude-opus-4": Price(15.00, 75.00, 1.50),
        "claude-3-opus": Price(15.00, 75.00, 1.50),
    },
    "groq": {
        "llama-3.1-8b-instant": Price(0.05, 0.08),
        "llama-3.3-70b-versatile": Price(0.59, 0.79),
    },
}
# providers whose models have no per-token price at all
FREE_PROVIDERS = frozenset({"ollama"})


def price_of(provider: str | None, model: str | None) -> Price | None:
    """The list price of ``model`` at ``provider``; None when the table does not know it."""
    if not provider or not model:
        return None
    if provider in FREE_PROVIDERS:
        return Price(0.0, 0.0)
    table = PRICES.get(provider, {})
    name = model.split("/", 1)[1] if model.startswith(f"{provider}/") else model
    known = [k for k in table if name == k or _snapshot_of(name, k)]
    return table[max(known, key=len)] if known else None


def _snapshot_of(name: str, model: str) -> bool:
    """``name`` is a dated or "latest" snapshot of ``model`` (``gpt-4o-2024-08-06``), not another model."""
    rest = name.removeprefix(model + "-") if name.startswith(model + "-") else ""
    return rest[:1].isdigit() or rest == "latest"


def cost_usd(
    provider: str | None, model: str | None, prompt_tokens: int, completion_tokens: int, cached_prompt_tokens: int = 0
) -> float | None:
    """What a call with these token counts costs at list price; None for a model the table does not price."""
    price = price_of(provider, model)
    if price is None:
        return None
    return price.cost(prompt_tokens, completion_tokens, cached_prompt_tokens)
