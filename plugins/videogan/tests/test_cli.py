"""videogan through the real CLI with the bundled weights: the GIF and parts strip a user gets, and evaluate."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from PIL import Image, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

GUTTER = 2  # the grid's padding between clips (and around them)


def test_sample_writes_an_animated_gif_of_4_clips_of_16_frames(tmp_path: Path) -> None:
    out = tmp_path / "clips.gif"
    process = run_gencli("sample", "videogan", "-n", "4", "--seed", "1", "-o", str(out), "--threads", "1")
    assert process.returncode == 0, process.stderr
    gif = Image.open(out)
    assert gif.format == "GIF" and gif.n_frames == 16
    assert gif.size == (2 * (32 + GUTTER) + GUTTER,) * 2  # 2 x 2 clips of 32 x 32
    assert [frame.info["duration"] for frame in ImageSequence.Iterator(gif)] == [130] * 16  # 8 fps
    provenance = json.loads(Image.open(out).info["comment"])
    assert provenance["plugin"] == "videogan" and provenance["seed"] == 1
    again = run_gencli("sample", "videogan", "-n", "4", "--seed", "1", "-o", "-", "--threads", "1")
    assert again.stdout == out.read_bytes()  # seeded: the same bytes down a pipe


def test_parts_show_clip_foreground_mask_and_background_rows(tmp_path: Path) -> None:
    out = tmp_path / "parts.png"
    process = run_gencli("sample", "videogan", "-n", "2", "--parts", "-o", str(out), "--threads", "1")
    assert process.returncode == 0, process.stderr
    strip = Image.open(out)
    assert strip.size == (16 * (32 + GUTTER) + GUTTER, 2 * 4 * (32 + GUTTER) + GUTTER)  # 16 frames x 8 rows
    background_row = [strip.crop((GUTTER + t * 34, GUTTER + 3 * 34, GUTTER + t * 34 + 32, GUTTER + 3 * 34 + 32))
                      for t in range(16)]
    assert all(frame.tobytes() == background_row[0].tobytes() for frame in background_row)  # static


def test_evaluate_json_reports_the_model_beside_its_baselines() -> None:
    process = run_gencli("evaluate", "videogan", "--json", "--clips", "16", "--classifier-steps", "5",
                         "--threads", "1")
    assert process.returncode == 0, process.stderr
    metrics = json.loads(process.stdout)["metrics"]
    for name in ("generated", "shuffled", "repeated"):
        assert 0 <= metrics[f"two_sample_accuracy_{name}"] <= 1
        assert 0 <= metrics[f"temporal_coherence_{name}"] <= 1
    assert metrics["motion_repeated_px_per_frame"] == 0
    assert 0 <= metrics["mask_area"] <= 1 and 0 <= metrics["mask_motion_share"] <= 1
    assert metrics["clips"] == 16


def test_strip_to_a_pipe_is_a_png_and_strip_refuses_a_gif_name(tmp_path: Path) -> None:
    process = run_gencli("sample", "videogan", "--strip", "-o", "-", "--threads", "1")
    assert process.returncode == 0, process.stderr
    assert Image.open(io.BytesIO(process.stdout)).size == (16 * 34 + GUTTER, 34 + GUTTER)
    refused = run_gencli("sample", "videogan", "--strip", "-o", str(tmp_path / "x.gif"))
    assert refused.returncode != 0 and "--strip writes a PNG strip" in refused.stderr


def test_two_processes_train_through_the_warm_up_and_the_held_object(tmp_path: Path) -> None:
    """The object warm-up leaves the clip critic, the moving parts' critic and the motion layers without
    gradients: DDP stopped at its first step until the plugin asked for unused-parameter detection."""
    run = tmp_path / "run"
    process = run_gencli("train", "videogan", "--preset", "tiny", "--object-warmup", "2", "--steps", "4",
                         "--nproc", "2", "--out", str(run), "--quiet")
    assert process.returncode == 0, process.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps[-1] == 4 and (run / "model.safetensors").is_file()
