"""srresnet through the real CLI: --scale errors in one line, and a photo upscaled from stdin."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402
from test_cli import assert_one_error_line  # noqa: E402

from gencli_srgan import Config, srresnet  # noqa: E402


def test_a_bad_scale_is_one_error_line(tmp_path):
    process = run_gencli("train", "srresnet", "--scale", "3", "--preset", "tiny", "--out", str(tmp_path / "run"))
    assert process.returncode == 2
    assert_one_error_line(process.stderr, "--scale 3", "2x or 4x")
    process = run_gencli("train", "srresnet", "--scale", "5")
    assert process.returncode == 2 and "at most 4" in process.stderr


def test_a_photo_on_stdin_comes_out_four_times_larger(tmp_path):
    import torch

    from gencli.weights import save_model

    torch.manual_seed(0)
    config = Config(blocks=1, channels=8, d_channels=4)
    save_model(tmp_path, srresnet, srresnet.build(config), config)
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(buffer, "PNG")
    process = run_gencli("sample", "srresnet", "--weights", str(tmp_path), "--input", "-", "--tile", "16",
                         input=buffer.getvalue())
    assert process.returncode == 0, process.stderr
    with Image.open(io.BytesIO(process.stdout)) as image:
        assert image.size == (120, 80) and image.mode == "RGB"
        assert json.loads(image.info["gencli"])["input"]["name"] == "-"
    process = run_gencli("sample", "srresnet", "--weights", str(tmp_path), "--input", "-", "--scale", "2",
                         input=buffer.getvalue())
    assert process.returncode == 2
    assert_one_error_line(process.stderr, "--scale 2: these weights upscale 4x")
