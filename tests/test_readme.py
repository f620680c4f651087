"""The README's quickstart stays true: CI runs its test command, and its main job prints text."""

from __future__ import annotations

import re
import shlex

from conftest import REPO, run_gencli


def quickstart_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    commands = [line for block in blocks[:2] for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2, commands
    return commands


def test_ci_runs_the_readme_test_command() -> None:
    _, test_command = quickstart_commands()
    assert test_command in (REPO / ".ci" / "run").read_text()


def test_quickstart_main_job_prints_generated_text() -> None:
    main_job, _ = quickstart_commands()
    gencli_part = main_job.split("&&")[-1].strip()
    argv = shlex.split(gencli_part)
    assert argv[0].endswith("gencli")
    process = run_gencli(*argv[1:])
    assert process.returncode == 0, process.stderr
    text = process.stdout.decode()
    assert text.startswith("The ") and len(text.strip()) >= 300
    assert len(set(text)) > 15  # real text, not one repeated character
