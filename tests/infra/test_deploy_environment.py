"""Where a deploy goes and what it needs: the account and region come from the CDK CLI unless the context
names them, no placeholder account reaches a template, and ``app.py`` imports only runtime and CDK packages
(what ``pip install`` of the layer's requirements plus aws-cdk-lib, constructs and cdk-nag gives)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution, packages_distributions
from pathlib import Path

from aws_cdk import Token
from packaging.requirements import Requirement

from infra.application import create_app
from infra.config import DeployConfig, deploy_environment
from tests.infra.synth import ROOT, TEST_ENVIRONMENT, cdk_json_context, synth_context

PLACEHOLDER = TEST_ENVIRONMENT["o:account"]


def test_the_context_overrides_the_cli_environment_and_neither_gives_no_account() -> None:
    cli = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "eu-west-1"}
    assert deploy_environment(DeployConfig(), cli) == ("111122223333", "eu-west-1")
    assert deploy_environment(DeployConfig(account="444455556666"), cli) == ("444455556666", "eu-west-1")
    assert deploy_environment(DeployConfig(region="ap-southeast-2"), cli) == ("111122223333", "ap-southeast-2")
    assert deploy_environment(DeployConfig(), {}) == (None, None)
    assert deploy_environment(DeployConfig(), {"CDK_DEFAULT_ACCOUNT": ""}) == (None, None)


def test_cdk_json_pins_no_account_but_keeps_the_test_accounts_zones_for_offline_synth() -> None:
    context = cdk_json_context()
    assert "o:account" not in context and "o:region" not in context
    placeholders = [key for key in context if PLACEHOLDER in key or PLACEHOLDER in json.dumps(context[key])]
    assert placeholders == [f"availability-zones:account={PLACEHOLDER}:region=us-east-1"]


def test_a_stack_goes_where_the_cli_points_unless_the_context_says_otherwise(tmp_path: Path, stub_layer: Path) -> None:
    context = {**cdk_json_context(), "o:layerDir": str(stub_layer), "o:region": "eu-west-1"}
    cli = {"CDK_DEFAULT_ACCOUNT": "111122223333", "CDK_DEFAULT_REGION": "us-west-2"}
    _, stack = create_app(context, outdir=str(tmp_path / "out"), code_out=tmp_path / "code", nag=False, environ=cli)
    assert (stack.account, stack.region) == ("111122223333", "eu-west-1")


def test_without_credentials_or_context_the_template_is_environment_agnostic(tmp_path: Path, stub_layer: Path) -> None:
    context = {**cdk_json_context(), "o:layerDir": str(stub_layer)}
    app, stack = create_app(context, outdir=str(tmp_path / "out"), code_out=tmp_path / "code", environ={})
    assert Token.is_unresolved(stack.account) and Token.is_unresolved(stack.region)
    template = app.synth().get_stack_by_name(stack.stack_name).template  # cdk-nag included
    text = json.dumps(template)
    assert PLACEHOLDER not in text
    subnets = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::Subnet"]
    assert subnets and all("Fn::GetAZs" in json.dumps(s["Properties"]["AvailabilityZone"]) for s in subnets)


# --- what `cdk deploy` imports -------------------------------------------------------------------------------

# Installed by the CDK packages' own requirements files or present in every interpreter start-up.
CDK_ROOTS = ("aws-cdk-lib", "constructs", "cdk-nag")
# The Lambda runtime provides boto3; the project itself is the `o` package.
RUNTIME_EXTRAS = ("boto3", "o-agents")
# What infra/README.md tells a machine that only deploys to install (with the repository checked out).
DEPLOY_ONLY = ("aws-cdk-lib", "constructs", "cdk-nag", "pydantic")


def _names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(Requirement(line).name)
    return names


def _closure(roots: set[str]) -> set[str]:
    """The installed distributions ``roots`` need, with their dependencies (no extras)."""
    seen: set[str] = set()
    todo = [_canonical(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_canonical(requirement.name))
    return seen


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported(args: list[str], env: dict[str, str]) -> set[str]:
    """Top-level modules ``python -X importtime <args>`` imports."""
    done = subprocess.run([sys.executable, "-X", "importtime", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    modules = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", done.stderr, re.MULTILINE)
    return {m.split(".")[0] for m in modules}


def _imported_by_app_py(tmp_path: Path, stub_layer: Path) -> set[str]:
    """Top-level modules ``python3 app.py`` imports as the CDK CLI runs it, beyond the interpreter's own start-up
    (site's .pth hooks on this machine)."""
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(synth_context(**{"o:layerDir": str(stub_layer)})),
        "CDK_OUTDIR": str(tmp_path / "out"),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    return _imported(["app.py"], env) - _imported(["-c", "pass"], env)


def test_cdk_deploy_needs_only_runtime_and_cdk_packages(tmp_path: Path, stub_layer: Path) -> None:
    imported = _imported_by_app_py(tmp_path, stub_layer)
    assert "infra" in imported and "aws_cdk" in imported
    assert not imported & {"tests", "pytest", "_pytest", "moto", "letta_client", "pgserver", "uvicorn"}
    layers = ROOT / "layers"
    allowed = _closure(
        _names(layers / "requirements.txt") | _names(layers / "requirements-nodeps.txt")
        | set(RUNTIME_EXTRAS) | set(CDK_ROOTS)
    )  # fmt: skip
    owners = packages_distributions()
    third_party = {module: {_canonical(d) for d in owners[module]} for module in imported if module in owners}
    outside = {module: dists for module, dists in third_party.items() if not dists & allowed}
    assert not outside, f"app.py imports packages that are neither runtime nor CDK: {outside}"
    # today that is the CDK and pydantic (infra/README.md's install line for a deploy-only machine)
    deploy_only = _closure(set(DEPLOY_ONLY) | {"o-agents"})
    beyond = {module: dists for module, dists in third_party.items() if not dists & deploy_only}
    assert not beyond, f"update DEPLOY_ONLY and infra/README.md: app.py also imports {beyond}"
