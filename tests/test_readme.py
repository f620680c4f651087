"""The README's quickstart stays true: CI runs its test command, and its main job prints text and writes audio."""

from __future__ import annotations

import re
import shlex

import soundfile

from conftest import REPO, run_gencli


def quickstart_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    commands = [line for block in blocks[:2] for line in block.splitlines() if line and not line.startswith("#")]
    assert len(commands) == 2, commands
    return commands


def gencli_steps(command: str) -> list[list[str]]:
    """The `gencli ...` parts of an `a && b && c` line, as argv lists without the program name."""
    steps = [shlex.split(part) for part in command.split("&&")]
    return [argv[1:] for argv in steps if argv and argv[0].endswith("/gencli")]


def test_ci_runs_the_readme_test_command() -> None:
    _, test_command = quickstart_commands()
    assert test_command in (REPO / ".ci" / "run").read_text()


def test_quickstart_main_job_prints_text_and_writes_one_second_of_audio(tmp_path) -> None:
    main_job, _ = quickstart_commands()
    text_step, audio_step = gencli_steps(main_job)
    process = run_gencli(*text_step, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    text = process.stdout.decode()
    assert text.startswith("The ") and len(text.strip()) >= 300
    assert len(set(text)) > 15  # real text, not one repeated character

    process = run_gencli(*audio_step, cwd=tmp_path)
    assert process.returncode == 0, process.stderr
    info = soundfile.info(str(tmp_path / "out.wav"))
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (16000, 1, "PCM_16", 16000)
    audio, _ = soundfile.read(str(tmp_path / "out.wav"))
    assert audio.std() > 1e-3  # not silence
