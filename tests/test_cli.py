"""The command line as a user meets it: flags per plugin, one-line errors, streaming, seeds, colour."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import gencli_env, run_gencli

from gencli.cli import main

ERROR_LINE = re.compile(r"^gencli: error: \S.*$")


def gencli_inprocess(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `gencli ARGS` in this process (no interpreter or torch start-up): (exit code, stdout, stderr)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 does for subprocesses: no oversubscription under xdist
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    """stderr is exactly one `gencli: error: ...` line (no traceback, no box), naming every fragment."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert ERROR_LINE.match(lines[0]), stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, stderr)
    assert "Traceback" not in stderr and "╭" not in stderr
    return lines[0]


def run_in_pty(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, bytes]:
    """Run `gencli ARGS` with stdin, stdout and stderr on a pseudo-terminal, as at an interactive shell."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "gencli", *args], stdin=slave, stdout=slave, stderr=slave,
                               env=env, close_fds=True)
    os.close(slave)
    output, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not data:
            break
        output += data
    os.close(master)
    return process.wait(timeout=timeout), output


# ---- help and per-plugin flags ------------------------------------------------------------------


def test_help_lists_the_commands() -> None:
    # Its speed is what test_registry's no-torch check guards and benchmarks/used_by.py measures: no timed test.
    process = run_gencli("--help")
    assert process.returncode == 0, process.stderr
    out = process.stdout.decode()
    for command in ("list", "info", "sample", "train", "evaluate", "push", "download"):
        assert re.search(rf"^\W*{command}\s", out, flags=re.M), (command, out)


def test_sample_help_lists_the_plugin_flags_with_their_help() -> None:
    process = run_gencli("sample", "charrnn", "--help", env=gencli_env(COLUMNS="200"))
    assert process.returncode == 0, process.stderr
    out = process.stdout.decode()
    for flag, words in (("--temperature", "Softmax temperature"), ("--length", "Characters to generate"),
                        ("--prime", "Text to start from"), ("--top-k", "likeliest characters")):
        line = next((line for line in out.splitlines() if flag in line), "")
        assert words in line, (flag, out)
    # real defaults, not Typer's "(400)", beside the declared bounds
    assert "[default: 400; 0<=x<=10,000,000]" in out and "[default: 0.8; 0<x<=100]" in out
    assert "org/name[@revision]" in out  # the help text is not eaten as rich markup
    assert re.search(r"^\W*-n\s", out, flags=re.M) and "--n " not in out


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (["sample", "charrnn", "--bogus"], 2, ["No such option: --bogus", "gencli sample charrnn --help"]),
    (["sample", "charrnn", "--length", "abc"], 2, ["--length"]),
    (["sample", "charrnn", "--temperature", "hot"], 2, ["--temperature"]),
    (["sample", "charrnn", "-n", "x"], 2, ["-n"]),
    (["sample", "nosuchplugin"], 2, ["unknown plugin 'nosuchplugin'", "charrnn"]),
    (["nosuchcommand"], 2, ["nosuchcommand"]),
    (["push"], 2, ["Missing argument"]),
    (["info", "nosuchplugin"], 2, ["unknown plugin"]),
    (["train", "charrnn", "--precision", "fp64"], 2, ["--precision"]),
    (["sample", "charrnn", "-n", "0", "--weights", "x"], 2, ["'-n': must be at least 1, not 0"]),
    (["sample", "charrnn", "-o", "out.png", "--weights", "x"], 2, ["-o out.png", ".png"]),
    (["sample", "charrnn", "-o", "no/such/folder/out.txt"], 2, ["does not exist"]),
    (["sample", "charrnn", "--weights", "./no/such/run"], 1, ["no such file or folder"]),
    (["sample", "charrnn", "--revision", "main"], 2, ["--revision needs --weights"]),
    (["download", "not a repo id"], 2, ["not a Hub repo id"]),
])
def test_user_errors_are_one_line_with_a_nonzero_code(capsys, args, code, fragments) -> None:
    got, out, err = gencli_inprocess(capsys, *args)
    assert got == code, err
    assert out == ""
    assert_one_error_line(err, *fragments)


def test_bad_values_from_the_plugin_are_one_line(capsys, tiny_run: Path) -> None:
    got, out, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--temperature", "0")
    assert got == 2 and out == ""
    assert_one_error_line(err, "--temperature", "must be greater than 0")  # now refused by the declared bound
    got, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--prime", "\x07")
    assert got == 2
    assert_one_error_line(err, "--prime")


def test_a_verb_without_a_plugin_shows_the_plugins(capsys) -> None:
    code, out, err = gencli_inprocess(capsys, "sample")
    assert code == 2 and err == ""
    assert "Usage: gencli sample" in out and "charrnn" in out


def test_unknown_flag_in_a_real_process_has_no_traceback() -> None:
    process = run_gencli("sample", "charrnn", "--tempreature", "0.5")
    assert process.returncode == 2 and process.stdout == b""
    assert_one_error_line(process.stderr, "No such option: --tempreature")


def test_debug_shows_the_traceback() -> None:
    args = ("sample", "charrnn", "--weights", "./no/such/run")
    plain = run_gencli(*args)
    debug = run_gencli(*args, env=gencli_env(GENCLI_DEBUG="1"))
    assert plain.returncode == debug.returncode == 1
    assert_one_error_line(plain.stderr, "no such file or folder")
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.rstrip().splitlines()[-1] == plain.stderr.strip()


def test_internal_errors_are_one_line_unless_debugging(capsys, monkeypatch) -> None:
    from gencli import commands

    def explode(**kwargs):
        raise RuntimeError("something inside broke\nwith detail")

    monkeypatch.setattr(commands, "list_plugins", explode)
    got, _, err = gencli_inprocess(capsys, "list")
    assert got == 1
    assert_one_error_line(err, "RuntimeError: something inside broke", "GENCLI_DEBUG=1")
    monkeypatch.setenv("GENCLI_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["list"])


def test_unwritable_outputs_are_user_errors(capsys, tiny_run: Path, tmp_path: Path) -> None:
    target = tmp_path / "taken.txt"
    target.mkdir()
    got, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "-o", str(target))
    assert got == 2
    assert_one_error_line(err, "is a folder")
    # /proc accepts no new files, even from root: the OS refuses, and the user gets one line naming the file.
    got, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--length", "5",
                                   "-o", "/proc/gencli-test.txt")
    assert got == 1
    assert_one_error_line(err, "cannot write /proc/gencli-test.txt")


# ---- colour --------------------------------------------------------------------------------------

COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-79]|9[0-7]|4[0-79]|10[0-7]|38;|48;)[0-9;]*m")


def test_no_color_is_honoured_at_a_terminal() -> None:
    env = gencli_env(TERM="xterm-256color", COLUMNS="100")
    env.pop("NO_COLOR")
    code, coloured = run_in_pty(["--help"], env)
    assert code == 0 and COLOUR.search(coloured), coloured[:300]  # colour at a terminal by default ...
    code, plain = run_in_pty(["--help"], {**env, "NO_COLOR": "1"})
    assert code == 0 and b"Usage" in plain
    assert not COLOUR.search(plain), plain[:300]  # ... and none with NO_COLOR
    code, listed = run_in_pty(["list"], {**env, "NO_COLOR": "1"})
    assert code == 0 and b"charrnn" in listed and not COLOUR.search(listed)


# ---- text output, pipes and seeds ----------------------------------------------------------------


def test_text_goes_to_stdout_and_to_a_file_with_a_provenance_sidecar(capsys, tiny_run: Path, tmp_path: Path):
    got, out, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--length", "60",
                                     "--prime", "The ", "--seed", "5")
    assert got == 0 and err == ""
    assert out.startswith("The ") and len(out) == len("The ") + 60 + 1  # + the final newline
    path = tmp_path / "poem.txt"
    got, file_out, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--length", "60",
                                          "--prime", "The ", "--seed", "5", "-o", str(path))
    assert got == 0 and file_out == "" and err.strip() == f"wrote {path}"
    assert path.read_text(encoding="utf-8") == out
    provenance = json.loads((tmp_path / "poem.txt.json").read_text())
    assert provenance["plugin"] == "charrnn" and provenance["seed"] == 5
    assert provenance["weights"] == f"local:{tiny_run.resolve()}"
    assert len(provenance["weights_sha256"]) == 64
    assert provenance["options"] == {"prime": "The ", "length": 60, "temperature": 0.8, "top_k": 0}
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    got, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--weights", str(tiny_run), "--length", "5",
                                   "-q", "-o", str(path))
    assert got == 0 and err == ""  # -q: not even the "wrote" line


def test_a_closed_pipe_ends_quietly(tiny_run: Path) -> None:
    command = (f"set -o pipefail; {sys.executable} -m gencli sample charrnn --weights '{tiny_run}' "
               "--length 100000 | head -c 100")
    process = subprocess.run(["bash", "-c", command], env=gencli_env(), capture_output=True, timeout=300)
    assert process.returncode == 0, process.stderr  # pipefail: gencli's own status
    assert len(process.stdout) == 100
    assert process.stderr == b""


def test_the_same_seed_gives_the_same_text_and_another_seed_differs(capsys, tiny_run: Path) -> None:
    args = ("sample", "charrnn", "--weights", str(tiny_run), "--length", "200", "-n", "3")
    # One run in a fresh process and one here: two separate invocations must agree to the character, for each of
    # the three streams (the whole output holds all three).
    process = run_gencli(*args, "--seed", "1")
    assert process.returncode == 0, process.stderr
    code, again, _ = gencli_inprocess(capsys, *args, "--seed", "1")
    assert code == 0 and len(again) > 600
    assert process.stdout.decode() == again
    code, other, _ = gencli_inprocess(capsys, *args, "--seed", "2")
    assert code == 0 and other != again


def test_a_command_that_cannot_be_built_is_a_broken_plugin_not_a_crash(capsys, monkeypatch) -> None:
    from gencli import commands
    from gencli.options import Flag

    # Something the contract check missed (here: one flag declared twice) fails while the command is built.
    flag = Flag("table", str, "no", group="SampleOptions")
    monkeypatch.setattr(commands, "verb_flags", lambda verb, plugin: [flag, flag])
    code, out, err = gencli_inprocess(capsys, "sample", "charrnn", "--table", "x")
    assert code == 1 and out == ""
    assert_one_error_line(err, "plugin 'charrnn' is broken", "--table is declared twice")
    code, out, _ = gencli_inprocess(capsys, "list", "--json")  # the rest of the CLI is unaffected
    assert code == 0 and '"charrnn"' in out
