"""Evaluation: the Parzen estimator against a direct computation, the Frechet distance against closed forms,
label figures, the figures evaluate reports, and labelled folders for cgan."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.errors import UsageError
from gencli.plugin import EvalRequest
from gencli_gan import cgan, digits, gan
from gencli_gan.parzen import parzen_estimate


def direct_log_density(x: np.ndarray, centres: np.ndarray, sigma: float) -> float:
    """log( 1/m sum_i N(x; c_i, sigma^2 I) ), one kernel at a time, in plain Python floats."""
    d = x.size
    total = 0.0
    for c in centres:
        squared = float(((x - c) ** 2).sum())
        total += math.exp(-squared / (2 * sigma ** 2)) / (2 * math.pi * sigma ** 2) ** (d / 2)
    return math.log(total / len(centres))


def test_parzen_matches_a_direct_computation_on_a_tiny_case() -> None:
    rng = np.random.default_rng(0)
    centres, valid, test = (rng.random((n, 2, 3)).astype(np.float32) for n in (7, 5, 4))
    grid = (0.2, 0.5, 1.0)
    estimate = parzen_estimate(torch.from_numpy(centres), torch.from_numpy(valid), torch.from_numpy(test), grid)
    valid_means = {s: np.mean([direct_log_density(v, centres, s) for v in valid]) for s in grid}
    best = max(grid, key=valid_means.get)
    scores = [direct_log_density(t, centres, best) for t in test]
    assert estimate.sigma == best
    assert estimate.mean_nats == pytest.approx(np.mean(scores), abs=1e-5)
    assert estimate.standard_error_nats == pytest.approx(np.std(scores, ddof=1) / math.sqrt(4), abs=1e-5)


def test_frechet_distance_matches_closed_forms() -> None:
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(400, 3, generator=generator, dtype=torch.float64)
    assert digits.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert digits.frechet_distance(a, a + torch.tensor([1.0, 2.0, 0.0])) == pytest.approx(5.0, abs=1e-8)
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    x = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)  # mean 0, variance 2
    assert digits.frechet_distance(x, 3 * x + 1) == pytest.approx(1 + (math.sqrt(18) - math.sqrt(2)) ** 2)


def test_label_coverage_and_entropy() -> None:
    coverage, entropy = digits.label_figures(torch.tensor([0, 1, 2, 3] * 5), 4)
    assert coverage == 1.0 and entropy == pytest.approx(math.log(4))
    coverage, entropy = digits.label_figures(torch.tensor([2] * 19 + [1]), 4)
    assert coverage == 0.25 and entropy < 0.3


def test_evaluate_reports_model_and_training_reference_figures() -> None:
    torch.manual_seed(0)
    prepared = cgan.prepare(None, cgan.Config(z_dim=8, base_channels=4), cgan.TrainOptions())
    model = cgan.build(prepared.config).eval()
    with torch.inference_mode():
        figures = cgan.evaluate(model, prepared.config, cgan.EvalOptions(samples=40),
                                EvalRequest(None, torch.device("cpu"), 0))
    for key in ("parzen_log_likelihood_nats", "parzen_standard_error_nats", "parzen_sigma",
                "parzen_train_reference_nats", "frechet_digit_distance", "frechet_digit_distance_train_reference",
                "label_coverage", "label_coverage_train_reference", "conditional_label_accuracy"):
        assert key in figures, key
    # the training images are good digits: the bundled classifier finds every class among them
    assert figures["label_coverage_train_reference"] == 1.0
    assert figures["digit_classifier_test_accuracy"] > 0.9
    assert figures["frechet_digit_distance"] > figures["frechet_digit_distance_train_reference"]
    assert figures["parzen_samples"] == 40


def write_folder(root, labelled: bool) -> None:
    rng = np.random.default_rng(0)
    for index in range(12):
        folder = root / ("ab"[index % 2] if labelled else "")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(folder / f"{index}.png")


def test_cgan_takes_its_labels_from_sub_folders(tmp_path) -> None:
    write_folder(tmp_path / "labelled", labelled=True)
    prepared = cgan.prepare(str(tmp_path / "labelled"), cgan.Config(z_dim=8, base_channels=4), cgan.TrainOptions())
    assert prepared.config.classes == ["a", "b"] and prepared.config.num_classes == 2
    _, labels, _ = prepared.data.batch(torch.Generator().manual_seed(0), 16)
    assert set(labels.tolist()) == {0, 1}
    write_folder(tmp_path / "flat", labelled=False)
    with pytest.raises(UsageError, match="sub-folder"):
        cgan.prepare(str(tmp_path / "flat"), cgan.Config(), cgan.TrainOptions())
    prepared = gan.prepare(str(tmp_path / "flat"), gan.Config(z_dim=8, g_hidden=8, d_units=4, d_pieces=2),
                           gan.TrainOptions())
    assert prepared.config.training_data == str(tmp_path / "flat")
    model = gan.build(prepared.config).eval()
    with torch.inference_mode():  # an unlabelled folder: Parzen figures only
        figures = gan.evaluate(model, prepared.config, gan.EvalOptions(samples=20),
                               EvalRequest(None, torch.device("cpu"), 0))
    assert "parzen_log_likelihood_nats" in figures and "frechet_digit_distance" not in figures


def test_a_labelled_folder_gets_its_own_classifier_trained_once_and_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_folder(tmp_path / "labelled", labelled=True)
    prepared = cgan.prepare(str(tmp_path / "labelled"), cgan.Config(z_dim=8, base_channels=4), cgan.TrainOptions())
    model = cgan.build(prepared.config).eval()
    request = EvalRequest(None, torch.device("cpu"), 0)
    with torch.inference_mode():  # as `gencli evaluate` calls it: the classifier must still train
        first = cgan.evaluate(model, prepared.config, cgan.EvalOptions(samples=20), request)
    cached = list((tmp_path / "cache" / "gencli" / "gan").glob("digit-classifier-*.safetensors"))
    assert len(cached) == 1
    with torch.inference_mode():
        again = cgan.evaluate(model, prepared.config, cgan.EvalOptions(samples=20), request)
    assert first == again and "conditional_label_accuracy" in first
