"""A real Chromium for the console's browser tests, installed from the package registries and cached.

Playwright's own ``playwright install`` downloads from a CDN this project cannot reach. The npm package
``@sparticuz/chromium`` ships a headless Chromium build, brotli-compressed, inside a registry tarball:
``npm pack`` fetches it without running anything, and PyPI's ``brotli`` unpacks it (no node at run time).
Debian's ``chromium`` package is the fallback when npm is missing. Both versions are pinned.

The binary is cached under ``$CONSOLE_BROWSER_CACHE`` (default ``~/.cache/o/browser``), so only the first run
pays for it (about 30 s, 480 MB). Outside CI a browser that cannot be had skips the tests with the reason;
in CI (``CI=true``) it fails them: CI must really run them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

SPARTICUZ = "@sparticuz/chromium@153.0.0"
BINARY_IN_TGZ = "package/bin/chromium.br"


def cache_dir() -> Path:
    return Path(os.environ.get("CONSOLE_BROWSER_CACHE") or Path.home() / ".cache" / "o" / "browser")


def _unpack(tgz: Path, out: Path) -> None:
    import brotli  # PyPI; in requirements.txt for this

    with tarfile.open(tgz) as tf:
        member = tf.extractfile(BINARY_IN_TGZ)
        if member is None:
            raise RuntimeError(f"{tgz.name} has no {BINARY_IN_TGZ}")
        data = member.read()
    decompressor = brotli.Decompressor()
    partial = out.with_suffix(".partial")
    with partial.open("wb") as f:
        for i in range(0, len(data), 1 << 22):
            f.write(decompressor.process(data[i : i + (1 << 22)]))
    partial.chmod(0o755)
    partial.rename(out)  # only a whole binary is ever found in the cache


def _from_npm(out: Path) -> str | None:
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed"
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [npm, "pack", SPARTICUZ, "--silent", "--pack-destination", scratch],
            capture_output=True,
            text=True,
            timeout=600,
        )
        tgzs = list(Path(scratch).glob("*.tgz"))
        if done.returncode != 0 or not tgzs:
            return f"npm pack {SPARTICUZ} failed: {done.stderr.strip()[-500:]}"
        _unpack(tgzs[0], out)
    return None


def _from_debian() -> Path | None:
    found = shutil.which("chromium")
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        if subprocess.run(args, capture_output=True, timeout=900).returncode != 0:
            return None
    found = shutil.which("chromium")
    return Path(found) if found else None


def chromium() -> tuple[Path | None, str]:
    """The Chromium binary to launch, installing it on first use; (None, why) when it cannot be had."""
    explicit = os.environ.get("CONSOLE_CHROMIUM")
    if explicit:
        return (Path(explicit), "") if Path(explicit).is_file() else (None, f"CONSOLE_CHROMIUM={explicit} is no file")
    out = cache_dir() / "sparticuz-chromium-153.0.0"
    if out.is_file():
        return out, ""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        why = _from_npm(out)
    except (OSError, RuntimeError, subprocess.SubprocessError, tarfile.TarError, ImportError) as exc:
        why = f"unpacking {SPARTICUZ} failed: {exc}"
    if why is None:
        return out, ""
    debian = _from_debian()
    if debian is not None:
        return debian, ""
    return None, f"no Chromium: {why}; Debian's chromium could not be installed either"


if __name__ == "__main__":  # `.ci/run` installs it before the tests: `python3 -m tests.e2e.browser`
    import sys

    found, reason = chromium()
    print(f"chromium: {found}" if found else f"chromium: {reason}")
    sys.exit(0 if found or os.environ.get("CI") != "true" else 1)
