"""pix2pix through the real CLI: --input from a file, a folder and stdin, held-out rows without it, and
evaluate --json with its baselines."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pix2pix") / "run"
    process = run_gencli("train", "pix2pix", "--preset", "tiny", "--steps", "2", "--out", str(out), "-q")
    assert process.returncode == 0, process.stderr
    return out


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def edge_map(height: int = 40, width: int = 30) -> np.ndarray:
    array = np.zeros((height, width), dtype=np.uint8)
    array[10:30, 14:16] = 255
    return array


def test_input_from_stdin_to_stdout_keeps_the_inputs_size(tiny_run) -> None:
    process = run_gencli("sample", "pix2pix", "--weights", str(tiny_run), "--input", "-", "-o", "-", "-q",
                         input=png(edge_map()))
    assert process.returncode == 0, process.stderr
    out = Image.open(io.BytesIO(process.stdout))
    assert out.size == (30, 40) and out.mode == "L"
    assert json.loads(out.text["gencli"])["input"]["name"] == "-"


def test_a_folder_of_inputs_maps_to_a_folder_of_outputs(tiny_run, tmp_path) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(edge_map()).save(tmp_path / "in" / "one.png")
    Image.fromarray(np.stack([edge_map(32, 48)] * 3, axis=2)).save(tmp_path / "in" / "two.png")  # RGB: to grey
    process = run_gencli("sample", "pix2pix", "--weights", str(tiny_run), "--input", str(tmp_path / "in"),
                         "-o", str(tmp_path / "out") + "/", "--keep-size", "-q")
    assert process.returncode == 0, process.stderr
    assert Image.open(tmp_path / "out" / "one.png").size == (30, 40)
    assert Image.open(tmp_path / "out" / "two.png").size == (48, 32)


def test_a_corrupt_input_is_one_error_line(tiny_run, tmp_path) -> None:
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    process = run_gencli("sample", "pix2pix", "--weights", str(tiny_run), "--input", str(tmp_path / "bad.png"),
                         "-o", str(tmp_path / "out.png"))
    assert process.returncode != 0 and len(process.stderr.strip().splitlines()) == 1, process.stderr
    assert not (tmp_path / "out.png").exists()


def test_without_input_rows_show_input_output_and_target(tiny_run, tmp_path) -> None:
    process = run_gencli("sample", "pix2pix", "--weights", str(tiny_run), "-n", "4", "-o", str(tmp_path / "rows.png"),
                         "-q")
    assert process.returncode == 0, process.stderr
    width, height = Image.open(tmp_path / "rows.png").size
    assert (width, height) == (3 * 34 + 2, 4 * 34 + 2)  # 3 columns x 4 rows of 32-pixel images, 2-pixel padding


def test_evaluate_json_reports_the_model_beside_baselines_and_a_second_run(tiny_run) -> None:
    process = run_gencli("evaluate", "pix2pix", "--weights", str(tiny_run), "--pairs", "40", "--against",
                         str(tiny_run), "--json", "-q")
    assert process.returncode == 0, process.stderr
    metrics = json.loads(process.stdout)["metrics"]
    assert metrics["pairs"] == 40
    for prefix in ("", "input_as_output_", "mean_target_", "against_"):
        assert {f"{prefix}l1", f"{prefix}psnr_db", f"{prefix}ssim"} <= set(metrics)
    assert metrics["digit_accuracy_real"] > 0.9  # the classifier reads the real digits
    # the same model with the same dropout seed: the same figures under another name
    assert metrics["against_l1"] == pytest.approx(metrics["l1"])
    assert metrics["against_digit_accuracy"] == pytest.approx(metrics["digit_accuracy"])
