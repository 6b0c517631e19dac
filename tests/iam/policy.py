"""Identity-policy evaluation: does a set of statements allow ``action`` on ``resource``?

What O's roles use, evaluated as IAM does: an explicit Deny wins, else any Allow whose Action and
Resource match (``*`` and ``?`` wildcards; actions compared without case, resources with case),
``NotAction``/``NotResource`` inverted. Conditions are not evaluated: a statement with a Condition
counts as matching only for the condition keys listed in ``TRUSTED_CONDITIONS`` (the rest would need
the request's context, which the recorder does not have), so an unknown condition never grants.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Condition keys a recorded call carries in its own parameters (the recorder reads them from there).
TRUSTED_CONDITIONS = frozenset({"cloudwatch:namespace"})
TRUSTED_PREFIXES = ("kms:EncryptionContext:",)


@dataclass(frozen=True)
class Request:
    action: str  # "lambda:GetFunctionConfiguration"
    resource: str  # an ARN, or "*" for actions without resource-level permissions
    context: Mapping[str, str] | None = None  # condition keys the request carries (e.g. cloudwatch:namespace)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _glob(pattern: str, value: str, *, case: bool) -> bool:
    # IAM wildcards: * any run, ? one character; nothing else is special
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        action_ok = any(_glob(a, request.action, case=False) for a in _as_list(statement["Action"]))
    else:
        action_ok = not any(_glob(a, request.action, case=False) for a in _as_list(statement.get("NotAction")))
    if not action_ok:
        return False
    if "Resource" in statement:
        resource_ok = any(_glob(r, request.resource, case=True) for r in _as_list(statement["Resource"]))
    else:
        resource_ok = not any(_glob(r, request.resource, case=True) for r in _as_list(statement.get("NotResource")))
    return resource_ok and _conditions_hold(statement.get("Condition") or {}, request)


def _conditions_hold(condition: Mapping[str, Mapping[str, Any]], request: Request) -> bool:
    for operator, pairs in condition.items():
        for key, expected in pairs.items():
            trusted = key in TRUSTED_CONDITIONS or key.startswith(TRUSTED_PREFIXES)
            if not trusted or operator not in ("StringEquals", "StringLike"):
                return False
            actual = (request.context or {}).get(key)
            if actual is None or not any(fnmatch.fnmatchcase(actual, e) for e in _as_list(expected)):
                return False
    return True


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    matching = [s for s in statements if _matches(s, request)]
    if any(s.get("Effect") == "Deny" for s in matching):
        return False
    return any(s.get("Effect") == "Allow" for s in matching)
