"""Evaluation: the figures evaluate reports, labelled folders for cgan. The estimators themselves live in
gencli.metrics (tests/test_metrics.py); test_bundled_figures.py checks the bundles' figures through them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from gencli.data import idx
from gencli.errors import UsageError
from gencli.metrics.digits import unit
from gencli.metrics.parzen import parzen_estimate
from gencli.plugin import EvalRequest
from gencli_gan import cgan, evaluation, gan
from gencli_gan.training import held_out_images, training_images


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
    cached = list((tmp_path / "cache" / "gencli" / "metrics").glob("digit-classifier-*.safetensors"))
    assert len(cached) == 1
    with torch.inference_mode():
        again = cgan.evaluate(model, prepared.config, cgan.EvalOptions(samples=20), request)
    assert first == again and "conditional_label_accuracy" in first


def write_idx_folder(folder, train_count: int, test_count: int) -> None:
    """A labelled IDX data set (MNIST's file layout): a sixth of its training images form the validation split."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, count in (("train", train_count), ("test", test_count)):
        arrays = {"images": rng.integers(0, 256, (count, 28, 28), dtype=np.uint8),
                  "labels": (np.arange(count) % 10).astype(np.uint8)}
        for kind, array in arrays.items():
            name = f"{idx.STEMS[(split, kind)]}-idx{idx.DIMENSIONS[kind]}-ubyte"
            (folder / name).write_bytes(idx.encode(array))


def test_a_data_set_with_splits_is_scored_on_its_validation_and_whole_test_split(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the digit classifier for these images
    write_idx_folder(tmp_path / "digits", train_count=72, test_count=20)
    source = str(tmp_path / "digits")
    config = gan.prepare(source, gan.Config(z_dim=8, g_hidden=8, d_units=4, d_pieces=2), gan.TrainOptions()).config
    train = training_images(source, config)
    valid, test = held_out_images(source, config)
    assert (len(train.pixels), len(valid.pixels), len(test.pixels)) == (60, 12, 20)  # not the test set halved
    assert "valid split" in valid.description and "test split" in test.description
    monkeypatch.setattr(evaluation, "REFERENCE_KERNELS", 25)  # the reference's kernels: the first 25 of 60
    scored: list[str] = []
    torch.manual_seed(0)
    model = gan.build(config).eval()
    request = EvalRequest(source, torch.device("cpu"), 3, describe_data=scored.append)
    with torch.inference_mode():
        figures = gan.evaluate(model, config, gan.EvalOptions(samples=30), request)
        samples, _ = evaluation.draw(model, config, 30, request)
    assert len(scored) == 1 and scored[0].startswith(test.description)
    assert valid.description in scored[0] and "25 of" in scored[0]
    expected = parzen_estimate(samples, unit(valid.pixels), unit(test.pixels))
    assert figures["parzen_log_likelihood_nats"] == pytest.approx(expected.mean_nats, abs=1e-9)
    reference = parzen_estimate(unit(train.pixels[:25]), unit(valid.pixels), unit(test.pixels))
    assert figures["parzen_train_reference_nats"] == pytest.approx(reference.mean_nats, abs=1e-9)
    assert "frechet_digit_distance" in figures


def test_evaluate_names_the_embedded_splits_it_scored() -> None:
    config = gan.Config(z_dim=8, g_hidden=8, d_units=4, d_pieces=2)
    scored: list[str] = []
    torch.manual_seed(0)
    model = gan.build(config).eval()
    with torch.inference_mode():
        gan.evaluate(model, config, gan.EvalOptions(samples=20),
                     EvalRequest(None, torch.device("cpu"), 0, describe_data=scored.append))
    assert len(scored) == 1
    assert "500" in scored[0] and "4,000 of" in scored[0]  # the 500 test digits; all 4,000 training digits
