"""Shell completion: the scripts in completions/ are what the CLI generates today, and they work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, gencli_env

from gencli import completions_gen

_generated: dict[str, str] = {}
_generate = completions_gen.generate  # the real one, whatever a test patches in later


def generated(shell: str) -> str:
    """completions_gen.generate, once per shell per test process (each call starts gencli)."""
    if shell not in _generated:
        _generated[shell] = _generate(shell)
    return _generated[shell]


@pytest.mark.parametrize("shell", sorted(completions_gen.FILES))
def test_completion_scripts_are_up_to_date(shell: str) -> None:
    path = REPO / "completions" / completions_gen.FILES[shell]
    assert path.is_file(), f"missing {path}; run `python -m gencli.completions_gen`"
    assert path.read_text() == generated(shell), f"{path} is stale; run `python -m gencli.completions_gen`"


def test_the_check_mode_notices_a_stale_script(tmp_path: Path, monkeypatch) -> None:
    for name in completions_gen.FILES.values():
        shutil.copy(REPO / "completions" / name, tmp_path / name)
    monkeypatch.setattr(completions_gen, "COMPLETIONS", tmp_path)
    monkeypatch.setattr(completions_gen, "generate", generated)
    assert completions_gen.main(["--check"]) == 0
    (tmp_path / completions_gen.FILES["fish"]).write_text("complete --command gencli --old-style\n")
    assert completions_gen.main(["--check"]) == 1
    assert completions_gen.main([]) == 0 and completions_gen.main(["--check"]) == 0  # regenerated


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_completes_plugins_and_their_flags(tmp_path: Path) -> None:
    # A `gencli` on PATH that is this interpreter's gencli, as an installed console script would be.
    launcher = tmp_path / "gencli"
    launcher.write_text(f"#!/bin/sh\nexec {sys.executable} -m gencli \"$@\"\n")
    launcher.chmod(0o755)
    script = REPO / "completions" / completions_gen.FILES["bash"]
    probe = f"""
        source '{script}'
        complete -p gencli
        COMP_WORDS=(gencli sample charrnn --te); COMP_CWORD=3; _gencli_completion gencli
        echo "flags: ${{COMPREPLY[*]}}"
        COMP_WORDS=(gencli sa); COMP_CWORD=1; _gencli_completion gencli
        echo "verbs: ${{COMPREPLY[*]}}"
        COMP_WORDS=(gencli sample ''); COMP_CWORD=2; _gencli_completion gencli
        echo "plugins: ${{COMPREPLY[*]}}"
    """
    env = gencli_env(PATH=f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.run(["bash", "--norc", "--noprofile", "-c", probe], env=env, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, process.stderr
    lines = dict(line.split(": ", 1) for line in process.stdout.splitlines() if ": " in line)
    assert "_gencli_completion" in process.stdout
    assert lines["flags"].split() == ["--temperature"]
    assert lines["verbs"].split() == ["sample"]
    assert "charrnn" in lines["plugins"].split()


def complete(words: str, env_extra: dict[str, str] | None = None) -> tuple[list[str], set[str]]:
    """What TAB offers after ``words`` (the last word is the one being completed) and the modules it imported."""
    cword = len(words.split(" ")) - 1
    env = gencli_env(_GENCLI_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword), **(env_extra or {}))
    process = subprocess.run([sys.executable, "-X", "importtime", "-m", "gencli"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, process.stderr[-2000:]
    modules = {line.split("|")[-1].strip() for line in process.stderr.splitlines() if line.startswith("import time:")}
    return process.stdout.split(), modules


@pytest.mark.parametrize("words,expected", [
    ("gencli train pixelrnn --preset ", ["tiny", "default", "gated-pixelcnn", "pixelcnn", "row-lstm",
                                         "diagonal-bilstm"]),
    ("gencli train pixelrnn --preset row", ["row-lstm"]),
    ("gencli train wavenet --preset ", ["tiny", "default", "cpu"]),
    ("gencli sample wavenet --sampler ", ["auto", "fused", "graph", "cached", "naive"]),
    ("gencli sample wavenet --speaker us-", ["us-f", "us-f-low", "us-m"]),  # the bundled model's speakers
    ("gencli train vae --arch ", ["conv", "mlp", "draw"]),
    ("gencli sample cgan --label ", ["all", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
])
def test_fixed_values_complete_from_the_declarations_without_torch(words: str, expected: list[str]) -> None:
    offered, modules = complete(words)
    assert offered == expected
    assert "gencli.cli" in modules and not {m for m in modules if m == "torch" or m.startswith("torch.")}


def test_speakers_complete_from_the_weights_on_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"speakers": ["alice", "bob"]}')
    assert complete(f"gencli sample wavenet --weights {tmp_path} --speaker ")[0] == ["alice", "bob"]
    assert complete(f"gencli sample wavenet --weights {tmp_path}/model.safetensors --speaker b")[0] == ["bob"]
    assert complete("gencli sample wavenet --weights org/name --speaker ")[0] == []  # never the Hub on a TAB
