"""The CDK app: build the asset folders, read the context, add the stack and the cdk-nag checks.

``app.py`` at the top of the repository calls :func:`create_app`; tests call it too,
with a context of their own and a small pre-made layer folder (``o:layerDir`` or the
``O_LAYER_DIR`` environment variable), so no test needs pip or the network.

The stack's account and region are the context's (``o:account`` / ``o:region``), else the ones
the CDK CLI runs with (``CDK_DEFAULT_ACCOUNT`` / ``CDK_DEFAULT_REGION``); see
:func:`infra.config.deploy_environment`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import App, Environment, Validations
from cdk_nag import AwsSolutionsChecks

from infra.build import CODE_OUT, build_code, build_layer
from infra.config import config_from_context, deploy_environment
from infra.service_function import AssetFolders
from infra.stack import OStack

LAYER_DIR_ENV = "O_LAYER_DIR"


def folder_fingerprint(folder: Path) -> str:
    """A hash of every file's relative path and bytes: changes exactly when the code does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


def create_app(
    context: Mapping[str, Any] | None = None,
    *,
    outdir: str | None = None,
    code_out: Path = CODE_OUT,
    nag: bool = True,
    environ: Mapping[str, str] = os.environ,
    bytecode: bool = True,
) -> tuple[App, OStack]:
    app = App(context=dict(context or {}), outdir=outdir)
    config = config_from_context(app.node.try_get_context, app.node.get_all_context().keys())
    code_dir = build_code(code_out, bytecode=bytecode)
    layer_dir = config.layer_dir or environ.get(LAYER_DIR_ENV)
    layer_path = Path(layer_dir) if layer_dir else build_layer()
    if not (layer_path / "python").is_dir():
        raise FileNotFoundError(f"layer folder {layer_path} has no python/ folder")

    account, region = deploy_environment(config, environ)
    stack = OStack(
        app,
        config.stack_name,
        config=config,
        folders=AssetFolders(code=code_dir, layer=layer_path, code_fingerprint=folder_fingerprint(code_dir)),
        env=Environment(account=account, region=region),
        description="O: self-evolving stateful agents (Letta v1 API) on Lambda, Step Functions and RDS",
    )
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
