"""Canary rollouts: a weighted Lambda alias on AWS, a hashing router in `o serve`.

How a canary carries its candidate on AWS
-----------------------------------------
Lambda versions belong to the function, not to an agent, so the version published for a canary
carries the id of the evolution in its environment (``O_CANARY_EVOLUTION``): the router sets it on
``$LATEST``, publishes (a configuration change guarantees Lambda really creates a new version rather
than returning the last one), and restores ``$LATEST`` at once. The agent-step handler passes that
variable to :func:`o.evolution.routing.revision_for_step`, which runs the candidate revision only
for the evolving agent and only while that evolution is still in its canary phase — once it is
promoted the agent's own revision pointer already names the candidate, and once rolled back the
version receives no traffic. Every other agent on that version runs its own revision.

Real Lambda enforces rules that moto does not (weights in 0..1, at most one extra version,
published versions only); :func:`validate_routing` enforces them here, before any call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from o.errors import Conflict, InvalidInput

CANARY_ENV = "O_CANARY_EVOLUTION"


def validate_routing(primary_version: str, weights: dict[str, float]) -> None:
    """Refuse what real Lambda refuses for an alias's RoutingConfig (and what O's policy forbids)."""
    if not _is_published(primary_version):
        raise InvalidInput(f"an alias must point at a published version, not {primary_version!r}")
    if len(weights) > 1:
        raise InvalidInput(f"an alias routes to at most one extra version, got {sorted(weights)}")
    for version, weight in weights.items():
        if not _is_published(version):
            raise InvalidInput(f"canary version must be a published version number, not {version!r}")
        if version == primary_version:
            raise InvalidInput(f"the canary version {version} is the alias's own version")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= float(weight) <= 1.0:
            raise InvalidInput(f"a routing weight must be between 0 and 1, got {weight!r}")


def _is_published(version: str) -> bool:
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


class AliasRouter:
    """Weighted routing on one Lambda alias through boto3, with O's own validation in front."""

    def __init__(self, lambda_client: Any, function_name: str, alias: str = "live") -> None:
        self.client = lambda_client
        self.function_name = function_name
        self.alias = alias

    @property
    def slot(self) -> str:
        return f"lambda:{self.function_name}:{self.alias}"

    def state(self) -> AliasState:
        alias = self.client.get_alias(FunctionName=self.function_name, Name=self.alias)
        weights = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        canary, weight = next(iter(weights.items()), (None, 0.0))
        return AliasState(self.function_name, self.alias, alias["FunctionVersion"], canary, float(weight))

    def canary_evolution(self) -> str | None:
        """The evolution whose candidate the alias's extra version carries, if it routes one."""
        state = self.state()
        if state.canary_version is None:
            return None
        config = self.client.get_function_configuration(FunctionName=self.function_name, Qualifier=state.canary_version)
        return ((config.get("Environment") or {}).get("Variables") or {}).get(CANARY_ENV)

    def publish_candidate(self, evolution_id: str) -> str:
        """Publish a version of the function that runs ``evolution_id``'s candidate; return its number."""
        config = self.client.get_function_configuration(FunctionName=self.function_name)
        env = dict((config.get("Environment") or {}).get("Variables") or {})
        env.pop(CANARY_ENV, None)
        self._set_env({**env, CANARY_ENV: evolution_id})
        try:
            published = self.client.publish_version(
                FunctionName=self.function_name, Description=f"O canary for {evolution_id}"
            )
        finally:
            # $LATEST never keeps the marker: the next deploy or canary must start clean
            self._set_env(env)
        version = str(published["Version"])
        if not _is_published(version):
            raise Conflict(f"Lambda returned {version!r} instead of a published version")
        return version

    def _set_env(self, variables: dict[str, str]) -> None:
        self.client.update_function_configuration(FunctionName=self.function_name, Environment={"Variables": variables})
        self.client.get_waiter("function_updated").wait(
            FunctionName=self.function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def _check_published(self, version: str) -> None:
        if not _is_published(version):
            raise InvalidInput(f"canary version must be a published version number, not {version!r}")
        try:
            self.client.get_function_configuration(FunctionName=self.function_name, Qualifier=version)
        except self.client.exceptions.ResourceNotFoundException as exc:
            raise InvalidInput(f"version {version} of {self.function_name} is not published") from exc

    def start_canary(self, version: str, weight: float) -> AliasState:
        state = self.state()
        if state.canary_version is not None:
            raise Conflict(
                f"alias {self.alias} already routes {state.canary_weight:.0%} to version {state.canary_version}; "
                "one canary per alias at a time"
            )
        validate_routing(state.version, {version: weight})
        self._check_published(version)
        return self._update(state.version, {version: float(weight)})

    def set_weight(self, weight: float) -> AliasState:
        state = self.state()
        if state.canary_version is None:
            raise Conflict(f"alias {self.alias} has no canary to re-weight")
        validate_routing(state.version, {state.canary_version: weight})
        return self._update(state.version, {state.canary_version: float(weight)})

    def promote(self, version: str) -> AliasState:
        """All traffic to ``version`` (the canary), extra weights cleared."""
        self._check_published(version)
        validate_routing(version, {})
        return self._update(version, {})

    def rollback(self) -> AliasState:
        """Extra weights cleared: all traffic back on the alias's stable version."""
        state = self.state()
        return self._update(state.version, {})

    def _update(self, version: str, weights: dict[str, float]) -> AliasState:
        self.client.update_alias(
            FunctionName=self.function_name,
            Name=self.alias,
            FunctionVersion=version,
            RoutingConfig={"AdditionalVersionWeights": weights},
        )
        return self.state()


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
