"""Rough edges a new user met (issue 20, section 4): --scale, counts printed as counts, progress that is not
silent off a terminal, and the quickstart's outputs kept out of git."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO
from PIL import Image
from test_cli import assert_one_error_line, gencli_inprocess

from gencli import evaluation, writers
from gencli.plugin import Images
from gencli.progress import WorkProgress


def test_scale_enlarges_each_pixel_into_a_block() -> None:
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1) * 10  # two 3x3 images
    out = io.BytesIO()
    writers.write(Images(pixels[:1]), "-", {"plugin": "x"}, default_stem="x", stdout=out, scale=4)
    image = np.asarray(Image.open(io.BytesIO(out.getvalue())))
    assert image.shape == (12, 12)
    assert (image[:4, :4] == pixels[0, 0, 0, 0]).all() and (image[8:, 8:] == pixels[0, 2, 2, 0]).all()
    grid = io.BytesIO()
    writers.write(Images(pixels), "-", {"plugin": "x"}, default_stem="x", stdout=grid, scale=2)
    assert Image.open(io.BytesIO(grid.getvalue())).size == (2 + 2 * (6 + 2), 2 + 6 + 2)  # the gaps stay thin


def test_scale_refuses_an_output_too_large_to_hold() -> None:
    with pytest.raises(writers.UsageError, match="--scale 64: 10,000 images of 28x28"):
        writers.scaled(Images(np.zeros((10_000, 28, 28, 1), dtype=np.uint8)), 64)


def test_scale_is_a_flag_of_image_plugins_only(capsys, tmp_path: Path) -> None:
    code, out, err = gencli_inprocess(capsys, "sample", "dcgan", "--scale", "3", "-o", str(tmp_path / "d.png"), "-q")
    assert code == 0, err
    assert Image.open(tmp_path / "d.png").size == (84, 84)
    code, _, err = gencli_inprocess(capsys, "sample", "charrnn", "--scale", "2")
    assert code == 2
    assert_one_error_line(err, "--scale")
    code, _, err = gencli_inprocess(capsys, "sample", "dcgan", "--scale", "0")
    assert code == 2
    assert_one_error_line(err, "'--scale': must be at least 1")


def test_counts_are_ints_and_print_as_counts(capsys) -> None:
    assert evaluation.plain_number(np.int64(46496)) == 46496 and isinstance(evaluation.plain_number(7), int)
    assert isinstance(evaluation.plain_number(np.float32(0.5)), float)
    assert isinstance(evaluation.plain_number(True), float)
    payload = {"plugin": "p", "weights": "w", "data": "d", "metrics": {"characters": 46496, "bits_per_char": 1.5}}
    evaluation._print(payload, as_json=False)
    out = capsys.readouterr().out
    assert re.search(r"characters\s+46496\n", out) and "46496.0000" not in out
    assert re.search(r"bits_per_char\s+1.5000\n", out)


def test_evaluate_prints_counts_without_decimals(capsys) -> None:
    code, out, err = gencli_inprocess(capsys, "evaluate", "vae", "--k", "2", "--max-images", "3", "--json")
    assert code == 0, err
    metrics = json.loads(out)["metrics"]
    assert metrics["test_images"] == 3 and isinstance(metrics["test_images"], int)
    assert metrics["importance_samples"] == 2 and isinstance(metrics["importance_samples"], int)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_off_a_terminal_is_a_line_every_few_seconds() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = WorkProgress("evaluate vae", quiet=False, interval=5.0, clock=clock, stream=stream, terminal=False)
    clock.now += 30  # set-up (loading data) is not counted in the pace
    for done in range(0, 101):
        progress.update(done, 100)
        clock.now += 1.0  # one unit of work a second: 100 s in all
    lines = stream.getvalue().splitlines()
    assert 18 <= len(lines) <= 21, lines  # one line per 5 s of work, not one per update
    assert lines[0].startswith("evaluate vae: 5/100 (5%), eta 0:01:35")  # the pace of the work, not the set-up
    assert lines[-1].startswith("evaluate vae: 100/100 (100%)")


def test_progress_is_silent_when_quick_or_quiet() -> None:
    clock, stream = Clock(), io.StringIO()
    progress = WorkProgress("x", quiet=False, interval=5.0, clock=clock, stream=stream, terminal=False)
    for done in range(10):
        progress.update(done, 10)
        clock.now += 0.1  # a one-second evaluation: nothing to report
    quiet = WorkProgress("x", quiet=True, interval=0.0, clock=clock, stream=stream, terminal=False)
    quiet.update(1, 10)
    quiet.update(2, 10)
    assert stream.getvalue() == ""


def test_vae_evaluation_reports_its_progress(capsys) -> None:
    """`gencli evaluate vae` printed nothing for 90 s off a terminal: it now reports every chunk it scores."""
    import torch

    from gencli.plugin import EvalRequest
    from gencli.weights import load_located, locate
    from gencli_vae import plugin

    loaded = load_located(plugin, locate(plugin, None, None, quiet=True), torch.device("cpu"))
    calls = []
    options = plugin.EvalOptions(k=3, max_images=4)
    request = EvalRequest(None, torch.device("cpu"), 0, progress=lambda done, total: calls.append((done, total)))
    with torch.inference_mode():
        plugin.evaluate(loaded.model, loaded.config, options, request)
    assert calls and calls[-1] == (12, 12)  # 4 images x k=3 decodes
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_the_quickstart_outputs_are_ignored_by_git(tmp_path: Path) -> None:
    """Running the README's examples in a clone leaves nothing for `git add .` to pick up."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    outputs = sorted({name for name in re.findall(r"-o '?([\w{}.-]+\.(?:wav|png|svg|txt))'?", readme)})
    assert "out.wav" in outputs
    checked = subprocess.run(["git", "check-ignore", "--no-index", *outputs], cwd=REPO, capture_output=True,
                             text=True)
    ignored = set(checked.stdout.split())
    assert set(outputs) <= ignored, sorted(set(outputs) - ignored)


def readme_commands() -> list[list[str]]:
    """Every `gencli sample|train|evaluate PLUGIN ...` example in the READMEs, as argv without `gencli`."""
    import shlex

    found = []
    for readme in [REPO / "README.md", *sorted(REPO.glob("plugins/*/README.md"))]:
        for line in readme.read_text(encoding="utf-8").splitlines():
            line = line.strip().split(" # ")[0].split(" | ")[0].split(" > ")[0].strip()  # no pipes, redirects
            if re.match(r"^gencli (sample|train|evaluate) \w", line):
                found.append(shlex.split(line)[1:])
    return found


def test_the_readme_examples_parse_within_the_declared_bounds() -> None:
    """--scale and friends in the examples exist for that plugin and keep their bounds (parsed, not run)."""
    import typer.main

    from gencli.cli import build_app

    root = typer.main.get_command(build_app())
    examples = readme_commands()
    assert any("--scale" in argv for argv in examples)
    for argv in examples:
        verb, name, *rest = argv
        group = root.get_command(None, verb)  # type: ignore[arg-type]
        command = group.get_command(None, name)
        assert command is not None, argv
        command.make_context(name, list(rest))  # raises on an unknown flag or a value out of bounds
