"""The README's figures for the bundled weights are the figures in those weights' model cards, so the two can
never drift apart: each claim names the card and metric it comes from, and its rounding."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CARDS = {
    "pixelrnn": "plugins/pixelrnn/gencli_pixelrnn/weights/README.md",
    "vae": "plugins/vae/gencli_vae/weights/README.md",
    "rbm": "plugins/boltzmann/gencli_boltzmann/weights/rbm/README.md",
    "dbm": "plugins/boltzmann/gencli_boltzmann/weights/dbm/README.md",
    "gan": "plugins/gan/gencli_gan/weights/gan/README.md",
    "dcgan": "plugins/gan/gencli_gan/weights/dcgan/README.md",
    "cgan": "plugins/gan/gencli_gan/weights/cgan/README.md",
    "gsn": "plugins/gsn/gencli_gsn/weights/gsn/README.md",
    "pix2pix": "plugins/pix2pix/gencli_pix2pix/weights/edges2digits/README.md",
    "lapgan": "plugins/gan/gencli_gan/weights/lapgan/README.md",
    "srresnet": "plugins/srgan/gencli_srgan/weights/srresnet/README.md",
    "srgan": "plugins/srgan/gencli_srgan/weights/srgan/README.md",
    "videogan": "plugins/videogan/gencli_videogan/weights/videogan/README.md",
}
# (the README's words, with {} where the figure stands; card; metric; decimals shown)
CLAIMS = [
    ("Gated PixelCNN, {} nats per test digit", "pixelrnn", "nll_nats_per_image", 1),
    ("| {} nats per image (exact NLL) on MNIST's", "pixelrnn", "nll_nats_per_image", 2),
    ("| NLL {} nats (k=500)", "vae", "nll_nats_per_image", 2),
    ("ELBO {}, gap", "vae", "elbo_nats_per_image", 2),
    ("gap {} on MNIST's", "vae", "elbo_gap_nats", 2),
    ("| log-likelihood {} nats (AIS", "rbm", "test_log_likelihood_nats", 2),
    ("| lower bound {} nats on MNIST's", "dbm", "test_log_likelihood_lower_bound_nats", 2),
    ("test digits: Parzen {} / ", "gan", "parzen_log_likelihood_nats", 1),
    (" / {} nats (its first 10,000", "dcgan", "parzen_log_likelihood_nats", 1),
    ("(its first 10,000 training digits: {})", "gan", "parzen_train_reference_nats", 1),
    ("(its first 10,000 training digits: {})", "dcgan", "parzen_train_reference_nats", 1),
    ("digit Frechet {} / ", "gan", "frechet_digit_distance", 0),
    (" / {} (features of a classifier", "dcgan", "frechet_digit_distance", 0),
    ("`mnist-5k`: Parzen {} nats", "cgan", "parzen_log_likelihood_nats", 1),
    ("(training digits: {}), digit Frechet", "cgan", "parzen_train_reference_nats", 1),
    ("digit Frechet {} |", "cgan", "frechet_digit_distance", 0),
    ("| Parzen {} nats from chain states", "gsn", "parzen_log_likelihood_nats", 1),
    ("a 1,000-step chain visits {} of 10 classes", "gsn", "mixing_classes_visited", 0),
    ("accuracy {} (the L1-only", "pix2pix", "digit_accuracy", 3),
    ("(the L1-only baseline's: {}; on the", "pix2pix", "l1_only_digit_accuracy", 3),
    ("on the real digits: {}). See", "pix2pix", "digit_accuracy_real", 3),
    ("| Parzen {} nats (dcgan, same training wall time", "lapgan", "parzen_log_likelihood_nats", 1),
    # lapgan's dcgan figure (77.5) is the earlier mnist-5k dcgan's: the dcgan card keeps it in its notes only.
    ("digit Frechet {} (dcgan: ", "lapgan", "frechet_digit_distance", 0),
    ("the asked class {}% of the time", "lapgan", "conditional_label_accuracy_percent", 1),
    ("bicubic {} dB, srresnet", "srresnet", "psnr_y_bicubic_db", 2),
    ("srresnet {} dB, srgan", "srresnet", "psnr_y_db", 2),
    ("srgan {} dB (PSNR on Y", "srgan", "psnr_y_db", 2),
    ("keep one digit in {} of clips (real clips", "videogan", "temporal_coherence_generated", 3),
    ("(real clips: {}), move at", "videogan", "temporal_coherence_real", 3),
    ("move at {} times the real speed", "videogan", "motion_ratio_generated_to_real", 2),
    ("shuffled frames ({} against", "videogan", "two_sample_accuracy_generated", 3),
    (" against {}); see", "videogan", "two_sample_accuracy_shuffled", 3),
]


def card_metrics(plugin: str) -> dict[str, float]:
    text = (REPO / CARDS[plugin]).read_text(encoding="utf-8")
    metrics = {m[1]: float(m[2]) for m in re.finditer(r"^\| (\w+) \| (-?[\d.]+) \|$", text, flags=re.M)}
    return metrics | {f"{k}_percent": 100 * v for k, v in metrics.items() if k.endswith("accuracy")}  # "88.0%"


@pytest.mark.parametrize(("words", "plugin", "metric", "decimals"), CLAIMS)
def test_the_readme_quotes_the_model_card(words: str, plugin: str, metric: str, decimals: int) -> None:
    expected = f"{card_metrics(plugin)[metric]:.{decimals}f}"
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert words.format(expected) in readme, f"README should say {words.format(expected)!r} ({plugin} card)"


def test_a_changed_card_figure_would_be_caught() -> None:
    """The check is not blind: a figure one unit off is not found in the README."""
    words, plugin, metric, decimals = CLAIMS[1]
    wrong = f"{card_metrics(plugin)[metric] + 1:.{decimals}f}"
    assert words.format(wrong) not in (REPO / "README.md").read_text(encoding="utf-8")
