"""The plugins through the real CLI: the engine's NaN handling, the bundled cgan's class rows, evaluate --json."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import gencli_env, run_gencli  # noqa: E402

from gencli.metrics import digits  # noqa: E402
from gencli_gan import cgan  # noqa: E402
from gencli_gan.training import embedded  # noqa: E402


def test_a_forced_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path) -> None:
    out = tmp_path / "run"
    faulty = Path(__file__).resolve().parents[3] / "tests" / "faulty_gencli.py"  # injects step 3's NaN
    process = subprocess.run([sys.executable, str(faulty), "nonfinite-3", "train", "gan", "--preset", "tiny", "--steps",
                              "6", "--save-every", "2", "--out", str(out)], env=gencli_env(), capture_output=True,
                             text=True, timeout=300)
    assert process.returncode == 1, process.stderr
    assert "Traceback" not in process.stderr
    assert "loss became nan at step 3" in process.stderr and "last good checkpoint (step 2)" in process.stderr
    assert (out / "training_state" / "step-00000002").is_dir() and not (out / "README.md").exists()


def tiles(png: bytes, rows: int, columns: int, side: int = 28, pad: int = 2) -> np.ndarray:
    """Cut the core's image grid (2-pixel padding) back into (rows * columns, side, side) images."""
    grid = np.asarray(Image.open(io.BytesIO(png)).convert("L"))
    assert grid.shape == (rows * (side + pad) + pad, columns * (side + pad) + pad)
    return np.stack([grid[pad + r * (side + pad):pad + r * (side + pad) + side,
                          pad + c * (side + pad):pad + c * (side + pad) + side]
                     for r in range(rows) for c in range(columns)])


@pytest.mark.skipif(not (cgan.bundled_weights / "model.safetensors").is_file(), reason="no bundled cgan weights")
def test_bundled_cgan_rows_are_recognised_as_their_class(tmp_path) -> None:
    """Acceptance: `gencli sample cgan --label all -o grid.png`; the digit classifier names >= 80% correctly."""
    process = run_gencli("sample", "cgan", "--label", "all", "-o", str(tmp_path / "grid.png"), "-q")
    assert process.returncode == 0, process.stderr
    images = tiles((tmp_path / "grid.png").read_bytes(), rows=10, columns=10)
    classifier = digits.classifier_for(embedded("train", 28))
    _, predicted = digits.embed(classifier, torch.from_numpy(images)[:, None].float() / 255.0)
    asked = torch.arange(10).repeat_interleave(10)
    accuracy = float((predicted == asked).float().mean())
    assert accuracy >= 0.8, f"only {accuracy:.0%} of the class rows are recognised as their class"


def test_evaluate_json_reports_parzen_and_frechet_with_references(tmp_run_dcgan) -> None:
    process = run_gencli("evaluate", "dcgan", "--weights", str(tmp_run_dcgan), "--json", "--samples", "200", "-q")
    assert process.returncode == 0, process.stderr
    metrics = json.loads(process.stdout)["metrics"]
    for key in ("parzen_log_likelihood_nats", "parzen_standard_error_nats", "parzen_sigma",
                "parzen_train_reference_nats", "frechet_digit_distance", "frechet_digit_distance_train_reference"):
        assert np.isfinite(metrics[key]), key
    assert metrics["parzen_samples"] == 200


@pytest.fixture(scope="module")
def tmp_run_dcgan(tmp_path_factory) -> Path:
    """A dcgan run folder with the tiny preset's architecture (weights saved directly, no training)."""
    from gencli import weights
    from gencli_gan import dcgan

    folder = tmp_path_factory.mktemp("dcgan")
    prepared = dcgan.prepare(None, dcgan.Config(z_dim=8, base_channels=4), dcgan.TrainOptions())
    torch.manual_seed(0)
    weights.save_model(folder, dcgan, dcgan.build(prepared.config), prepared.config)
    return folder
