"""A small digit classifier whose penultimate layer gives the feature space for the "digit-feature Frechet
distance" and whose predictions give label coverage. It is NOT the Inception network, so its Frechet figures
are not comparable with published FIDs; they compare models within gencli.

gencli trains it itself, deterministically, on the training split the image plugins use. The weights are cached
as safetensors keyed by a hash of that data: the embedded MNIST one ships in ``digit_classifier/`` (package data
of the core); others (a labelled --data folder) are trained at first use and cached under
~/.cache/gencli/metrics/ ($XDG_CACHE_HOME if set).
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from gencli.data.images import ImageSet
from gencli.messages import note

BUNDLED = Path(__file__).parent / "digit_classifier"
EPOCHS, BATCH, LR, SEED = 8, 64, 1e-3, 0


class DigitClassifier(nn.Module):
    def __init__(self, channels: int, size: int, classes: int, features: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.hidden = nn.Linear(32 * (size // 4) ** 2, features)
        self.out = nn.Linear(features, classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] (B, C, H, W) -> (B, features), the space the Frechet distance is measured in."""
        h = F.max_pool2d(F.relu(self.conv1(images)), 2)  # (B, 16, H/2, W/2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # (B, 32, H/4, W/4)
        return F.relu(self.hidden(h.flatten(1)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(images))  # (B, classes) logits


def data_key(images: ImageSet) -> str:
    digest = hashlib.sha256()
    digest.update(images.pixels.contiguous().numpy().tobytes())
    digest.update(images.labels.contiguous().numpy().tobytes())
    digest.update(f"{len(images.classes)}|{EPOCHS}|{BATCH}|{LR}|{SEED}".encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gencli" / "metrics"


def classifier_for(images: ImageSet) -> DigitClassifier:
    """The classifier for these labelled training images: bundled, cached, or trained now (and cached)."""
    from safetensors.torch import load_file

    from gencli.files import atomic_write
    from gencli.weights import state_dict_bytes

    name = f"digit-classifier-{data_key(images)}.safetensors"
    # evaluate() runs under inference mode, whose tensors can never join autograd: build outside it.
    with torch.inference_mode(False):
        for path in (BUNDLED / name, cache_dir() / name):
            if path.is_file():
                model = new_classifier(images)
                model.load_state_dict(load_file(str(path)))
                return model.eval()
        note(f"training the digit classifier for the evaluation once (cached as {cache_dir() / name})")
        model = train_classifier(images)
    atomic_write(cache_dir() / name, state_dict_bytes(model.state_dict()))
    return model


def new_classifier(images: ImageSet) -> DigitClassifier:
    channels, size, _ = images.shape
    with torch.random.fork_rng():  # a fixed initialisation that leaves the caller's RNG alone
        torch.manual_seed(SEED)
        return DigitClassifier(channels, size, len(images.classes))


def train_classifier(images: ImageSet) -> DigitClassifier:
    """Deterministic: fixed init seed, fixed shuffles, fixed epochs (about 10 s on one core for 4,000 digits)."""
    with torch.inference_mode(False), torch.enable_grad():
        model = new_classifier(images)
        pixels = images.pixels.clone().float() / 255.0  # clones: normal tensors even if loaded in inference mode
        labels = images.labels.clone()
        generator = torch.Generator().manual_seed(SEED)
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        model.train()
        for _ in range(EPOCHS):
            order = torch.randperm(pixels.shape[0], generator=generator)
            for start in range(0, len(order), BATCH):
                rows = order[start:start + BATCH]
                loss = F.cross_entropy(model(pixels[rows]), labels[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    return model.eval()


@torch.no_grad()
def embed(model: DigitClassifier, images: torch.Tensor, chunk: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, F) float64, predicted labels (N,)) for images in [0, 1]."""
    features, predicted = [], []
    for start in range(0, images.shape[0], chunk):
        h = model.features(images[start:start + chunk].float())
        features.append(h.double())
        predicted.append(model.out(h).argmax(1))
    return torch.cat(features), torch.cat(predicted)


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """||mu_a - mu_b||^2 + tr(Ca + Cb - 2 (Ca^1/2 Cb Ca^1/2)^1/2) between Gaussians fitted to two feature sets.

    The matrix square root goes through symmetric eigendecompositions (no scipy), which is exact for the
    symmetric positive semi-definite product used here.
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.atleast_2d(torch.cov(a.T)), torch.atleast_2d(torch.cov(b.T))  # (F, F), also for F = 1
    w, v = torch.linalg.eigh(cov_a)
    root_a = v @ torch.diag(w.clamp_min(0).sqrt()) @ v.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    return float(((mu_a - mu_b) ** 2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * trace_root)


def label_figures(predicted: torch.Tensor, classes: int) -> tuple[float, float]:
    """(coverage, entropy in nats) of predicted labels. Coverage: the fraction of classes that receive at least
    half of their uniform share (1 / 2K) of the samples; entropy ln K means perfectly balanced classes."""
    counts = torch.bincount(predicted, minlength=classes).double()
    share = counts / counts.sum()
    coverage = float((share >= 0.5 / classes).double().mean())
    entropy = max(0.0, float(-(share[share > 0] * share[share > 0].log()).sum()))  # max: no "-0.0"
    return coverage, entropy


def unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (N, C, H, W) -> float32 in [0, 1], the scale every figure here is measured on."""
    return pixels.float() / 255.0


def labelled(images: ImageSet) -> bool:
    """Whether the digit figures apply: at least two classes and a label on every image."""
    return len(images.classes) >= 2 and not bool((images.labels < 0).any())


def digit_figures(train: ImageSet, test: ImageSet, samples: torch.Tensor,
                  asked: torch.Tensor | None = None) -> dict[str, float]:
    """The evaluate figures of samples in [0, 1] (N, C, H, W) by the classifier trained on ``train``, each beside
    its ``*_train_reference`` twin: Frechet distance to the test images' features, label coverage and entropy;
    with ``asked`` (the class each sample was conditioned on) also ``conditional_label_accuracy``."""
    classifier = classifier_for(train)
    classes = len(train.classes)
    sample_features, sample_labels = embed(classifier, samples)
    test_features, test_predicted = embed(classifier, unit(test.pixels))
    train_features, train_predicted = embed(classifier, unit(train.pixels))
    coverage, entropy = label_figures(sample_labels, classes)
    train_coverage, train_entropy = label_figures(train_predicted, classes)
    figures: dict[str, float] = {}
    if min(len(sample_features), len(test_features), len(train_features)) >= 2:  # a covariance needs two images
        figures["frechet_digit_distance"] = frechet_distance(sample_features, test_features)
        figures["frechet_digit_distance_train_reference"] = frechet_distance(train_features, test_features)
    figures |= {
        "label_coverage": coverage,
        "label_coverage_train_reference": train_coverage,
        "label_entropy_nats": entropy,
        "label_entropy_train_reference_nats": train_entropy,
        "label_entropy_max_nats": math.log(classes),
        "digit_classifier_test_accuracy": float((test_predicted == test.labels).double().mean()),
    }
    if asked is not None:
        figures["conditional_label_accuracy"] = float((sample_labels == asked).double().mean())
    return figures
