"""`o completion bash|zsh`: the shell completion script of `o`, printed for the shell to load.

Made by shtab from the same argparse parser the commands run on, so it knows every subcommand, flag and
choice without being kept by hand. shtab writes a static script: pressing Tab runs no Python (argcomplete
would start `o` on every Tab, which imports the whole server), and it needs nothing at run time."""

from __future__ import annotations

import argparse
from typing import Any

SHELLS = ("bash", "zsh")

INSTALL = {
    "bash": 'eval "$(o completion bash)"   # in ~/.bashrc',
    "zsh": 'o completion zsh > "${fpath[1]}/_o"   # then start a new shell (compinit loads it)',
}


def add_parser(sub: Any, root: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        epilog="to install it: " + "; ".join(f"{s}: {INSTALL[s]}" for s in SHELLS),
    )
    p.add_argument("shell", choices=SHELLS)
    p.set_defaults(func=lambda args: _print(root, args.shell))


# what shtab completes a flag's value with (its shtab.DIRECTORY), set on the flag without importing shtab
DIRECTORY = {"bash": "_shtab_compgen_dirs", "zsh": "_files -/", "tcsh": "d"}


def script(root: argparse.ArgumentParser, shell: str) -> str:
    import shtab

    return str(shtab.complete(root, shell=shell))


def _print(root: argparse.ArgumentParser, shell: str) -> int:
    print(script(root, shell))
    return 0
