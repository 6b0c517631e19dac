"""The canary's routing policy: what real Lambda enforces on an alias, and the local router's split."""

from __future__ import annotations

import pytest

from o.errors import InvalidInput
from o.evolution.rollout import LocalRouter, request_share, validate_routing


def test_validate_routing_enforces_what_lambda_enforces() -> None:
    validate_routing("1", {"2": 0.1})
    validate_routing("3", {})
    for primary, weights in [
        ("$LATEST", {}),
        ("1", {"$LATEST": 0.1}),
        ("1", {"2": 1.5}),
        ("1", {"2": -0.1}),
        ("1", {"2": 0.1, "3": 0.1}),
        ("1", {"1": 0.5}),
        ("1", {"2": True}),
        ("0", {}),
    ]:
        with pytest.raises(InvalidInput):
            validate_routing(primary, weights)  # type: ignore[arg-type]


def test_local_router_split_within_tolerance() -> None:
    router = LocalRouter(weight=0.1, seed="evolution-1")
    n = 20_000
    share = sum(router.to_candidate(f"req-{i}") for i in range(n)) / n
    # binomial sd at p=0.1, n=20000 is 0.0021; 4 sd
    assert abs(share - 0.1) < 0.0085
    # the same request always lands on the same side; another seed splits differently
    assert all(router.to_candidate(f"req-{i}") == router.to_candidate(f"req-{i}") for i in range(100))
    other = LocalRouter(weight=0.1, seed="evolution-2")
    assert sum(router.to_candidate(f"r{i}") != other.to_candidate(f"r{i}") for i in range(2000)) > 100
    assert 0.0 <= request_share("s", "x") < 1.0
    assert not any(LocalRouter(0.0, "s").to_candidate(f"r{i}") for i in range(1000))
    assert all(LocalRouter(1.0, "s").to_candidate(f"r{i}") for i in range(1000))
    with pytest.raises(InvalidInput):
        LocalRouter(1.2, "s")
