"""Build the Lambda code asset and the dependency layer without Docker.

    python -m infra.build            # both
    python -m infra.build layer      # only the layer (cached by the hash of its inputs)
    python -m infra.build code       # only the code folder

The code asset is the ``o`` package, the ``functions`` handlers and the ``schema``
migrations copied into one folder (``o.store.migrate.schema_dir`` finds ``schema/``
beside the package in it). The layer is every runtime dependency from
``layers/requirements.txt`` installed by pip as manylinux aarch64 wheels for the
Lambda Python version, so nothing is compiled and no container is needed. ``app.py``
calls these on every synth; a layer whose inputs did not change is reused as is.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER_REQUIREMENTS = ROOT / "layers" / "requirements.txt"
LAYER_CACHE = ROOT / "layers" / "build"
CODE_OUT = ROOT / ".build" / "code"

PYTHON_VERSION = "3.12"
PLATFORM = "manylinux2014_aarch64"
# The Lambda runtime ships these; a copy in the layer would only shadow them and add 30 MB.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
CODE_PARTS = ("o", "functions", "schema")
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.egg-info")


def layer_key(requirements: Path = LAYER_REQUIREMENTS) -> str:
    """What the layer depends on: its requirements, the target platform and Python version."""
    digest = hashlib.sha256()
    digest.update(requirements.read_bytes())
    digest.update(f"{PLATFORM}|{PYTHON_VERSION}|{','.join(PROVIDED_BY_RUNTIME)}".encode())
    return digest.hexdigest()[:16]


def build_layer(requirements: Path = LAYER_REQUIREMENTS, cache: Path = LAYER_CACHE) -> Path:
    """The layer folder (with ``python/`` inside), built once per distinct input."""
    key = layer_key(requirements)
    target = cache / key
    if (target / ".complete").is_file():
        return target
    staging = cache / f"{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
            "--no-compile", "--no-warn-conflicts", "--root-user-action=ignore",
            "--platform", PLATFORM, "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:",
            "--target", str(site), "-r", str(requirements),
        ],
        check=True,
    )  # fmt: skip
    for name in PROVIDED_BY_RUNTIME:
        shutil.rmtree(site / name, ignore_errors=True)
        for meta in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(meta)
    for cached in site.rglob("__pycache__"):
        shutil.rmtree(cached, ignore_errors=True)
    (staging / ".complete").write_text(
        json.dumps({"key": key, "seconds": round(time.monotonic() - started, 1)})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def build_code(out: Path = CODE_OUT, root: Path = ROOT) -> Path:
    """A fresh copy of the code every function runs; same inputs give the same bytes."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for part in CODE_PARTS:
        shutil.copytree(root / part, out / part, ignore=_SKIP)
    return out


def main(argv: list[str]) -> int:
    what = argv[0] if argv else "all"
    if what not in ("all", "layer", "code"):
        print("usage: python -m infra.build [all|layer|code]", file=sys.stderr)
        return 2
    if what in ("all", "code"):
        print(f"code:  {build_code()}")
    if what in ("all", "layer"):
        started = time.monotonic()
        folder = build_layer()
        print(f"layer: {folder} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
