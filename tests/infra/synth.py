"""The CDK context the tests synthesize with: ``cdk.json`` as ``cdk synth`` reads it, in the test account.

``cdk.json`` pins no account (a deploy takes the CLI's); tests name the one whose availability
zones it holds, so nothing is looked up and the template is the same on every machine.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEST_ENVIRONMENT = {"o:account": "123456789012", "o:region": "us-east-1"}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((ROOT / "cdk.json").read_text())["context"]


def synth_context(**overrides: Any) -> dict[str, Any]:
    """The context ``cdk synth`` reads from cdk.json, in the test account, with ``overrides``."""
    return {**cdk_json_context(), **TEST_ENVIRONMENT, **overrides}


def synth_template(tmp: Path, **overrides: Any) -> dict[str, Any]:
    """The stack's template from a real synth in ``tmp`` (cdk-nag off: tests/infra runs it), with a
    stand-in layer so no pip runs."""
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra.application import create_app

    layer = tmp / "layer"
    (layer / "python").mkdir(parents=True, exist_ok=True)
    context = synth_context(**{"o:layerDir": str(layer), **overrides})
    # no bytecode: the template does not depend on it, and compiling the code would slow every synth
    app, stack = create_app(
        context, outdir=str(tmp / "cdk.out"), code_out=tmp / "code", nag=False, environ={}, bytecode=False
    )
    return dict(app.synth().get_stack_by_name(stack.stack_name).template)
