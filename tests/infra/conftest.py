"""One real synthesis of the O app per test session, with cdk-nag, shared by every infra test.

The layer is a small pre-made folder (``o:layerDir``) so no test needs pip or the
network; everything else is exactly what ``cdk synth`` builds from ``cdk.json``, in the
test account whose availability zones ``cdk.json`` holds (so nothing is looked up).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.infra.synth import synth_context

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


@dataclass(frozen=True)
class Synthesized:
    app: Any
    stack: Any
    template: dict[str, Any]
    outdir: Path

    def resources(self, kind: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == kind}

    def one(self, kind: str, where: str | None = None) -> tuple[str, dict[str, Any]]:
        """The only resource of ``kind`` (whose logical id contains ``where``, if given)."""
        found = [(k, v) for k, v in self.resources(kind).items() if where is None or where in k]
        assert len(found) == 1, f"expected one {kind} matching {where!r}, found {[k for k, _ in found]}"
        return found[0]


@pytest.fixture(scope="session")
def stub_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("layer")
    (folder / "python").mkdir()
    (folder / "python" / "README").write_text("stand-in for the dependency layer in tests\n")
    return folder


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory, stub_layer: Path) -> Iterator[Synthesized]:
    from infra.application import create_app

    outdir = tmp_path_factory.mktemp("cdk.out")
    context = synth_context(**{"o:layerDir": str(stub_layer)})
    app, stack = create_app(context, outdir=str(outdir), code_out=tmp_path_factory.mktemp("code") / "code", environ={})
    assembly = app.synth()  # raises if any cdk-nag AwsSolutions finding is not acknowledged
    template = assembly.get_stack_by_name(stack.stack_name).template
    yield Synthesized(app=app, stack=stack, template=template, outdir=outdir)
