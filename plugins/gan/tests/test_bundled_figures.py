"""The bundled gan/dcgan/cgan figures are unchanged by moving the Parzen and digit-classifier code into the core
(gencli.metrics, issue 14).

The full evaluate (10,000 samples, the cards' setting) takes 5-8 s per model on one thread, so the test runs
the cheaper ``--samples 1000`` path. Its figures were recorded with the OLD in-plugin code (commit 9122163,
gencli_gan/parzen.py and digits.py) by ``gencli evaluate MODEL --samples 1000 --json --threads 1``; the moved
code reproduced them to 5e-14 (and the cards' 10,000-sample figures to 2e-14). The figures that do not depend on
the samples (the training images' reference, the classifier's accuracy) are also checked against each card.

gan and dcgan left this test when their bundles were retrained on full MNIST (issue 19): their mnist-5k bundles
still gave the recorded figures (gan 62.6969 Parzen, 66.7670 Frechet; dcgan -4.2787, 41.0065 at 1,000 samples)
with the evaluation that scores a data set's own validation and test splits, and a full-MNIST evaluation takes
1.5 min, too long for a test.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests"))
from conftest import run_gencli  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[1] / "gencli_gan" / "weights"

OLD_CODE_FIGURES_1000_SAMPLES = {
    "cgan": {
        "parzen_log_likelihood_nats": 17.938399359878574,
        "parzen_standard_error_nats": 8.008633179053831,
        "parzen_sigma": 0.21544346900318834,
        "frechet_digit_distance": 20.09648388569167,
        "label_coverage": 1.0,
        "label_entropy_nats": 2.299486033132104,
        "conditional_label_accuracy": 0.953,
    },
}
SAMPLE_FREE = ("parzen_train_reference_nats", "parzen_train_reference_standard_error_nats",
               "parzen_train_reference_sigma", "frechet_digit_distance_train_reference",
               "label_coverage_train_reference", "label_entropy_train_reference_nats", "digit_classifier_test_accuracy")


def card_figures(model: str) -> dict[str, float]:
    """The `| metric | value |` rows of the bundled model card."""
    text = (WEIGHTS / model / "README.md").read_text()
    return {key: float(value) for key, value in re.findall(r"^\| (\w+) \| ([-\d.]+) \|$", text, re.M)}


@pytest.mark.parametrize("model", sorted(OLD_CODE_FIGURES_1000_SAMPLES))
def test_moved_metrics_give_the_bundled_figures_unchanged(model: str) -> None:
    if not (WEIGHTS / model / "model.safetensors").is_file():
        pytest.skip(f"no bundled {model} weights")
    process = run_gencli("evaluate", model, "--samples", "1000", "--json", "--threads", "1", "-q")
    assert process.returncode == 0, process.stderr
    figures = json.loads(process.stdout)["metrics"]
    for key, old in OLD_CODE_FIGURES_1000_SAMPLES[model].items():
        assert figures[key] == pytest.approx(old, abs=1e-6), key
    card = card_figures(model)
    for key in SAMPLE_FREE:
        assert figures[key] == pytest.approx(card[key], abs=5.1e-5), key  # the card rounds to 4 decimals
