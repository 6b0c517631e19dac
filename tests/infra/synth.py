"""The CDK context the tests synthesize with: ``cdk.json`` as ``cdk synth`` reads it, in the test account.

``cdk.json`` pins no account (a deploy takes the CLI's); tests name the one whose availability
zones it holds, so nothing is looked up and the template is the same on every machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEST_ENVIRONMENT = {"o:account": "123456789012", "o:region": "us-east-1"}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def synth_context(**overrides: Any) -> dict[str, Any]:
    """The context ``cdk synth`` reads from cdk.json, in the test account, with ``overrides``."""
    return {**cdk_json_context(), **TEST_ENVIRONMENT, **overrides}
