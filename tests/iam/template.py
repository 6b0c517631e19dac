"""A synthesized CloudFormation template, read as the deployed account would see it.

Intrinsic functions (``Ref``, ``Fn::GetAtt``, ``Fn::Join``, ``Fn::Sub``, ``Fn::Select``,
``Fn::Split``) resolve against a :class:`World`: the physical names and ARNs of the resources as they
exist (in the tests: in moto). Pseudo parameters resolve to the stack's account, region and partition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# AWS managed policies the stack attaches, with the statements that matter for O's calls (logs and
# ENIs only: nothing in them reaches a service O calls from its code).
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": "*"},
    ],
    "AWSLambdaVPCAccessExecutionRole": [
        {"Effect": "Allow", "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                       "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                                       "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
         "Resource": "*"},
    ],
}  # fmt: skip


@dataclass
class World:
    """What each logical resource is called and where it lives, once deployed."""

    account: str
    region: str
    partition: str = "aws"
    # logical id -> the value of Ref
    refs: dict[str, str] = field(default_factory=dict)
    # (logical id, attribute) -> the value of Fn::GetAtt
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def pseudo(self, name: str) -> str | None:
        return {
            "AWS::AccountId": self.account,
            "AWS::Region": self.region,
            "AWS::Partition": self.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": "O",
        }.get(name)


class Unresolved(KeyError):
    """A reference to something the world does not know (the test must name it)."""


def resolve(value: Any, world: World) -> Any:
    """``value`` with every intrinsic function replaced by what it evaluates to in ``world``."""
    if isinstance(value, list):
        return [resolve(v, world) for v in value]
    if not isinstance(value, Mapping):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key in _INTRINSICS:
            return _INTRINSICS[key](arg, world)
    return {k: resolve(v, world) for k, v in value.items()}


def _ref(name: str, world: World) -> str:
    pseudo = world.pseudo(name)
    if pseudo is not None:
        return pseudo
    if name not in world.refs:
        raise Unresolved(f"Ref {name}")
    return world.refs[name]


def _get_att(arg: Any, world: World) -> str:
    logical, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
    if (logical, attribute) not in world.attributes:
        raise Unresolved(f"Fn::GetAtt {logical}.{attribute}")
    return world.attributes[(logical, attribute)]


def _join(arg: list[Any], world: World) -> str:
    separator, parts = arg
    return str(separator).join(str(resolve(p, world)) for p in parts)


def _sub(arg: Any, world: World) -> str:
    text, names = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in names:
            return str(resolve(names[name], world))
        if "." in name:
            return _get_att(name, world)
        return _ref(name, world)

    return re.sub(r"\$\{([^}!][^}]*)\}", lookup, text)


def _select(arg: list[Any], world: World) -> Any:
    index, items = arg
    return resolve(items, world)[int(index)]


def _split(arg: list[Any], world: World) -> list[str]:
    separator, text = arg
    return str(resolve(text, world)).split(separator)


_INTRINSICS = {
    "Ref": _ref,
    "Fn::GetAtt": _get_att,
    "Fn::Join": _join,
    "Fn::Sub": _sub,
    "Fn::Select": _select,
    "Fn::Split": _split,
}


def resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def function_of(template: Mapping[str, Any], handler: str) -> str:
    """The logical id of the function whose handler is ``handler``."""
    (logical,) = [k for k, v in resources(template, "AWS::Lambda::Function").items()
                  if v["Properties"].get("Handler") == handler]  # fmt: skip
    return logical


def role_of(template: Mapping[str, Any], function: str) -> str:
    role = template["Resources"][function]["Properties"]["Role"]
    return str(role["Fn::GetAtt"][0])


def role_statements(template: Mapping[str, Any], role: str, world: World) -> list[dict[str, Any]]:
    """Every statement the role's identity policies hold, resolved (inline, attached and AWS managed)."""
    statements: list[dict[str, Any]] = []
    props = template["Resources"][role]["Properties"]
    for inline in props.get("Policies", []):
        statements += inline["PolicyDocument"]["Statement"]
    for policy in resources(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    for arn in props.get("ManagedPolicyArns", []):
        name = str(resolve(arn, world)).rsplit("/", 1)[-1]
        if name not in MANAGED_POLICIES:
            raise Unresolved(f"managed policy {name}: add its statements to MANAGED_POLICIES")
        statements += MANAGED_POLICIES[name]
    return [resolve(s, world) for s in statements]
