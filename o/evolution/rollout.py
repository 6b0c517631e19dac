"""Canary rollouts: a weighted Lambda alias on AWS, a hashing router in `o serve`.

How a canary carries its candidate on AWS
-----------------------------------------
Lambda versions belong to the function, not to an agent, so the version published for a canary
carries the id of the evolution in its environment (``O_CANARY_EVOLUTION``): the router sets it on
``$LATEST``, publishes (a configuration change guarantees Lambda really creates a new version rather
than returning the last one), and restores ``$LATEST`` at once. The agent-step handler passes that
variable to :class:`o.evolution.routing.CanaryRouter`, which runs the candidate revision only
for the evolving agent and only while that evolution is still in its canary phase — once it is
promoted the agent's own revision pointer already names the candidate, and once rolled back the
version receives no traffic. Every other agent on that version runs its own revision.

Real Lambda enforces rules that moto does not (weights in 0..1, at most one extra version,
published versions only); :func:`validate_routing` enforces them here, before any call. The alias
itself is a port (:class:`AliasRouter`); its AWS adapter is :class:`o.aws.alias.LambdaAlias`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from o.config import env_name
from o.errors import InvalidInput

# the variable a canary's published version carries (Settings.canary_evolution)
CANARY_ENV = env_name(None, "canary_evolution")


def validate_routing(primary_version: str, weights: dict[str, float]) -> None:
    """Refuse what real Lambda refuses for an alias's RoutingConfig (and what O's policy forbids)."""
    if not is_published(primary_version):
        raise InvalidInput(f"an alias must point at a published version, not {primary_version!r}")
    if len(weights) > 1:
        raise InvalidInput(f"an alias routes to at most one extra version, got {sorted(weights)}")
    for version, weight in weights.items():
        if not is_published(version):
            raise InvalidInput(f"canary version must be a published version number, not {version!r}")
        if version == primary_version:
            raise InvalidInput(f"the canary version {version} is the alias's own version")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= float(weight) <= 1.0:
            raise InvalidInput(f"a routing weight must be between 0 and 1, got {weight!r}")


def is_published(version: str) -> bool:
    return isinstance(version, str) and version.isdigit() and int(version) >= 1


@dataclass(frozen=True)
class AliasState:
    function_name: str
    alias: str
    version: str
    canary_version: str | None
    canary_weight: float

    @property
    def slot(self) -> str:
        return f"lambda:{self.function_name}:{self.alias}"


class AliasRouter(Protocol):
    """The weighted alias that carries a canary (AWS: :class:`o.aws.alias.LambdaAlias`)."""

    function_name: str
    alias: str

    @property
    def slot(self) -> str:
        """What one canary at a time may hold (``lambda:<function>:<alias>``)."""
        ...

    def canary_evolution(self) -> str | None:
        """The evolution whose candidate the alias's extra version carries, if it routes one."""
        ...

    def publish_candidate(self, evolution_id: str) -> str:
        """Publish a version that runs ``evolution_id``'s candidate; its number."""
        ...

    def start_canary(self, version: str, weight: float) -> AliasState: ...

    def set_weight(self, weight: float) -> AliasState:
        """Step the canary's share of traffic to ``weight``."""
        ...

    def promote(self, version: str) -> AliasState: ...

    def rollback(self) -> AliasState: ...


def request_share(seed: str, request_id: str) -> float:
    """A request's position in [0, 1), stable for (seed, request id) and uniform over ids."""
    digest = hashlib.sha256(f"{seed}\x00{request_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class LocalRouter:
    """The same weighted split as the alias, for `o serve`: a request goes to the candidate when its
    hashed share falls under the weight, so a retried request (same id) always lands on the same side."""

    weight: float
    seed: str

    def __post_init__(self) -> None:
        validate_routing("1", {"2": self.weight})

    def to_candidate(self, request_id: str) -> bool:
        return request_share(self.seed, request_id) < self.weight
