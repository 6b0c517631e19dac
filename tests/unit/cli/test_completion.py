"""`o completion bash|zsh`: the scripts name every subcommand, and bash, once it has sourced its script,
completes `o` with them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from o.cli import main

SUBCOMMANDS = (
    "serve", "keys", "migrate", "evolve", "export", "import", "agents", "chat", "doctor", "files", "completion"
)  # fmt: skip


def _script(shell: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def test_the_bash_script_completes_subcommands_and_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script("bash", capsys)
    listed = re.search(r"^_shtab_o_subparsers=\((.*)\)$", script, re.M)
    assert listed is not None and set(SUBCOMMANDS) <= set(listed[1].split())
    assert "_shtab_o_evolve_subparsers=(start list show stop approve policy rollback history)" in script
    path = tmp_path / "o.bash"
    path.write_text(script)

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        shell = (
            f"source {path}\ncomplete -p o\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
            f'COMP_LINE="{line}"; COMP_POINT={len(line)}\n_shtab_o\nprintf "%s\\n" "${{COMPREPLY[@]}}"'
        )
        done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=30, check=True)
        registered, *offered = done.stdout.splitlines()
        assert registered == "complete -o bashdefault -F _shtab_o o"
        return offered

    assert complete("o", "ev") == ["evolve"]
    assert complete("o", "evolve", "h") == ["history"]
    assert complete("o", "serve", "--p") == ["--port"]
    assert complete("o", "completion", "") == ["bash", "zsh"]
    (tmp_path / "data").mkdir()
    assert str(tmp_path / "data") in complete("o", "serve", "--data-dir", str(tmp_path / "da"))


def test_the_zsh_script_names_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    script = _script("zsh", capsys)
    assert script.startswith("#compdef o")
    for name in SUBCOMMANDS:
        assert f"\n    {name}:'" in script, name
    if shutil.which("zsh"):
        subprocess.run(["zsh", "-n"], input=script, text=True, check=True, timeout=30)


def test_an_unknown_shell_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["completion", "fish"])
    assert exit_.value.code == 2 and "invalid choice: 'fish'" in capsys.readouterr().err
