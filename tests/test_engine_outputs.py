"""What a run leaves and says: metrics.jsonl, loss.png, the model card, plain progress lines on a non-terminal
stderr (-q silence is checked by every -q run in test_engine_resume.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from test_engine_common import TINY, metrics, train

from conftest import run_gencli


def test_run_folder_progress_and_model_card(tmp_path: Path):
    out = tmp_path / "run"
    process = train(out, *TINY, "--steps", "12", "--log-every", "3", "--save-every", "6", "--seed", "3")
    # Plain lines (stderr is a pipe here, not a terminal): a start line, one per log interval, a final line.
    lines = process.stderr.splitlines()
    assert lines[0].startswith("train charrnn: step 0/12, lr 0.002"), lines
    progress = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in progress] == ["3/12", "6/12", "9/12", "12/12"], lines
    assert all(re.search(r"loss \d", line) and " eta " in line for line in progress)
    assert lines[-1].startswith(f"run folder: {out}"), lines
    assert "\r" not in process.stderr and "\x1b" not in process.stderr, "no animation or colour off a terminal"
    assert process.stdout == b""

    rows = metrics(out)
    assert [row["step"] for row in rows] == [3, 6, 9, 12]
    assert all({"loss", "bits_per_char", "lr", "items_per_s", "time"} <= set(row) for row in rows)
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    run = json.loads((out / "run.json").read_text())
    card = (out / "README.md").read_text()
    assert f"```\n{run['command']}\n```" in card  # the exact command
    assert run["command"].startswith("gencli train charrnn --preset tiny")
    assert "- data: pydoc-topics (embedded" in card
    assert "- steps: 12, batch size 8, seed 3" in card
    assert re.search(r"- wall time: \d+\.\d s of training", card)
    # The evaluation figures are those `gencli evaluate` reports for the folder.
    evaluated = run_gencli("evaluate", "charrnn", "--weights", str(out), "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    for name, value in json.loads(evaluated.stdout)["metrics"].items():
        shown = str(int(value)) if float(value).is_integer() else f"{value:.4f}"
        assert f"| {name} | {shown} |" in card, (name, shown)
