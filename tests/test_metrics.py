"""gencli.metrics: the Parzen estimator against a direct computation (and its chunked form against the whole
matrix), the Frechet distance against closed forms, the label figures, and where the classifier is cached."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gencli.metrics import digits
from gencli.metrics.parzen import log_densities, log_density, parzen_estimate, parzen_figures, squared_distances


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


@pytest.mark.parametrize("row_chunk, centre_chunk", [(1, 1), (3, 7), (5, 64), (1000, 2048)])
def test_chunked_parzen_equals_the_whole_distance_matrix(row_chunk: int, centre_chunk: int) -> None:
    """Blocks over both the points and the kernels (ragged last blocks included) give the one-matrix figure.
    float64 inputs: in float32 the matmul's rounding depends on the block shape (1e-6 relative)."""
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(50, 1, 6, 6, generator=generator, dtype=torch.float64)
    points = torch.rand(23, 1, 6, 6, generator=generator, dtype=torch.float64)
    sigmas = (0.1, 0.3, 1.0)
    chunked = log_densities(points, centres, sigmas, row_chunk=row_chunk, centre_chunk=centre_chunk)  # (3, 23)
    whole = torch.stack([log_density(squared_distances(points, centres), s, 36) for s in sigmas])
    assert chunked.shape == (3, 23)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-9)


def test_parzen_figures_put_the_training_images_beside_the_samples() -> None:
    generator = torch.Generator().manual_seed(1)
    train, valid, test = (torch.rand(n, 1, 4, 4, generator=generator) for n in (30, 10, 10))
    figures = parzen_figures(train.flip(0)[:20], train, valid, test)
    reference = parzen_estimate(train, valid, test)
    assert figures["parzen_train_reference_nats"] == reference.mean_nats
    assert figures["parzen_samples"] == 20.0
    assert figures["parzen_log_likelihood_nats"] == parzen_estimate(train.flip(0)[:20], valid, test).mean_nats


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


def test_the_embedded_digits_classifier_ships_with_the_core_and_others_cache_under_metrics(monkeypatch,
                                                                                          tmp_path) -> None:
    from gencli.data.images import mnist

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert digits.cache_dir() == tmp_path / "gencli" / "metrics"
    classifier = digits.classifier_for(mnist("train"))  # the bundled weights: nothing trained, nothing cached
    assert not (tmp_path / "gencli").exists()
    test = mnist("test")
    _, predicted = digits.embed(classifier, digits.unit(test.pixels))
    assert float((predicted == test.labels).double().mean()) > 0.9
