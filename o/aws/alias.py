"""The AWS :class:`~o.evolution.rollout.AliasRouter`: weighted routing on one Lambda alias.

A canary's version carries its evolution's id in ``O_CANARY_EVOLUTION``: set on ``$LATEST``, the
version published, and ``$LATEST`` restored at once (see :mod:`o.evolution.rollout`). Every call
goes through :func:`~o.evolution.rollout.validate_routing` first: moto accepts what real Lambda
refuses.
"""

from __future__ import annotations

import contextlib
from typing import Any

import boto3

from o.errors import Conflict, InvalidInput
from o.evolution.rollout import CANARY_ENV, AliasState, is_published, validate_routing


class LambdaAlias:
    """Weighted routing on one Lambda alias through boto3, with O's own validation in front."""

    def __init__(self, lambda_client: Any | None, function_name: str, alias: str = "live") -> None:
        self._client = lambda_client
        self.function_name = function_name
        self.alias = alias

    @property
    def client(self) -> Any:
        # made when the alias is first read or moved, not when the API starts
        if self._client is None:
            self._client = boto3.client("lambda")
        return self._client

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
        if not is_published(version):
            raise Conflict(f"Lambda returned {version!r} instead of a published version")
        return version

    def _set_env(self, variables: dict[str, str]) -> None:
        self.client.update_function_configuration(FunctionName=self.function_name, Environment={"Variables": variables})
        self.client.get_waiter("function_updated").wait(
            FunctionName=self.function_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
        )

    def _check_published(self, version: str) -> None:
        if not is_published(version):
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


def point_live_at(function_name: str, alias: str, version: str, *, lambda_client: Any | None = None) -> str:
    """Deploy ``version`` as the alias's primary version and keep whatever weighted canary the runtime
    is running (its extra version and weight): a deploy owns the code that serves, the evolution loop
    owns the routing. Creates the alias on a first deploy. Returns the alias ARN."""
    lambda_client = lambda_client or boto3.client("lambda")
    try:
        current = lambda_client.get_alias(FunctionName=function_name, Name=alias)
    except lambda_client.exceptions.ResourceNotFoundException:
        created = lambda_client.create_alias(FunctionName=function_name, Name=alias, FunctionVersion=version)
        return str(created["AliasArn"])
    weights = dict((current.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})
    # a canary of the version now deployed as the primary has nothing left to compare
    weights.pop(version, None)
    validate_routing(version, weights)
    updated = lambda_client.update_alias(
        FunctionName=function_name,
        Name=alias,
        FunctionVersion=version,
        RoutingConfig={"AdditionalVersionWeights": weights},
    )
    return str(updated["AliasArn"])


def delete_alias(function_name: str, alias: str, *, lambda_client: Any | None = None) -> None:
    """Delete the alias; one that is already gone is fine (a retried delete)."""
    lambda_client = lambda_client or boto3.client("lambda")
    with contextlib.suppress(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.delete_alias(FunctionName=function_name, Name=alias)
