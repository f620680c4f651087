"""What the RBM and the DBM share: binary image data, Gibbs-chain pictures, filters, features and the AIS schedule."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from gencli.data.images import EMBEDDED, ImageBatches, data_split, fixed_binarization, load_image
from gencli.errors import UsageError
from gencli.plugin import Images, Prepared, Text


# ---- data ---------------------------------------------------------------------------------------------------


def training_images(data: str | None, size: int) -> Any:
    """The training images: the embedded train split, or a folder's part that evaluation does not hold out."""
    return data_split(data, "train", size, 1)


def prepare(data: str | None, config: Any, options: Any, binary: bool = True) -> Prepared:
    """Training batches of the images; ``binary``: with their "binary" 0/1 states drawn by the engine, else as
    "pixels" only, for a step that binarizes them itself (the RBM's)."""
    images = training_images(data, config.image_size)
    config.training_data = data or EMBEDDED  # what `gencli evaluate` scores when --data is not given
    return Prepared(config, ImageBatches(images, binary=binary), images.description + ", binarized per batch")


def evaluation_data(request: Any, config: Any) -> str:
    """--data as typed, else the data set the model was trained on (its test split is what the card reports)."""
    return request.data or config.training_data


@dataclass
class HeldOut:
    test: torch.Tensor  # float 0/1 (N, V): the fixed binarization of the held-out images
    base_rate: torch.Tensor  # (V,) mean intensity of the training images: AIS's base-rate model
    train_images: int
    description: str


def held_out(data: str | None, size: int) -> HeldOut:
    train, test = data_split(data, "train", size, 1), data_split(data, "test", size, 1)
    binary = fixed_binarization(test, "test")
    base_rate = train.pixels.float().flatten(1).mean(0) / 255.0
    return HeldOut(binary.flatten(1), base_rate, train.pixels.shape[0],
                   f"{test.description}, binarized once with a fixed seed")


def base_rate_bias(base_rate: torch.Tensor, images: int) -> torch.Tensor:
    """Visible biases of the base-rate model (Salakhutdinov and Murray 2008): the logit of each pixel's mean,
    smoothed like one extra half-on image so that never-lit pixels get a finite bias."""
    smoothed = (base_rate * images + 0.5) / (images + 1.0)
    return torch.log(smoothed) - torch.log1p(-smoothed)


# ---- annealed importance sampling -------------------------------------------------------------------------


def ais_betas(count: int) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_K = 1 with ``count`` intermediate ones, spaced as in
    Salakhutdinov and Murray (2008): 500 in [0, 0.5], 4,000 in [0.5, 0.9], 10,000 in [0.9, 1] out of
    14,500, scaled proportionally for other counts (denser where the distribution changes fastest)."""
    if count < 3:
        raise UsageError("--ais-betas must be at least 3")
    first = max(1, round(count * 500 / 14500))
    second = max(1, round(count * 4000 / 14500))
    third = max(1, count - first - second)
    parts = [torch.linspace(0.0, 0.5, first + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.5, 0.9, second + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.9, 1.0, third + 1, dtype=torch.float64)]
    return torch.cat(parts)


def log_mean_exp_with_spread(log_weights: torch.Tensor) -> tuple[float, float]:
    """(log of the mean importance weight, its standard error in nats by the delta method)."""
    runs = log_weights.numel()
    top = log_weights.max()
    relative = torch.exp(log_weights - top)
    mean = relative.mean()
    log_mean = float(top + torch.log(mean))
    spread = float(relative.std(unbiased=True) / (math.sqrt(runs) * mean)) if runs > 1 else float("nan")
    return log_mean, spread


def check_ais_options(options: Any) -> None:
    if options.ais_runs < 1:
        raise UsageError("--ais-runs must be at least 1")
    ais_betas(options.ais_betas)


# ---- sampling helpers -------------------------------------------------------------------------------------


def bernoulli(probability: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(probability.shape, generator=generator, device=probability.device) < probability).to(
        probability.dtype)


# splitmix64 (Steele, Lea and Flood 2014): a counter's hash, so any block of the stream is computed independently.
GOLDEN, MIX1, MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def splitmix64(seed: int, first: int, count: int) -> np.ndarray:
    """Words first .. first + count - 1 (uint64) of the stream of ``seed``: the numpy twin of
    ``kernels.fill_bits``, for models too narrow to wait for numba to load."""
    counter = np.arange(first + 1, first + count + 1, dtype=np.uint64)  # arrays wrap on overflow, as C does
    z = np.uint64(seed % 2 ** 64) + counter * np.uint64(GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(MIX2)
    return z ^ (z >> np.uint64(31))


class RandomBits:
    """The random bits of one training step: a 64-bit seed drawn from torch's global generator (so
    ``torch.manual_seed`` and a checkpoint's generator state reproduce the step), then the splitmix64 stream of that
    seed, handed out in whole 64-bit words in the order the step asks for them. The numba kernels take all of a
    step's words at once and the torch step block by block, so both see the same bits.
    torch's own ``random_`` makes 64 bits in 5 ns; this stream in 0.2 ns (numba, one AVX2 thread): at batch 100 the
    step's 54,000 words took 0.26 ms of a 3.7 ms step, now 0.01 ms.
    ``compiled``: make the words with ``kernels.fill_bits`` (numba) rather than ``splitmix64`` (numpy)."""

    def __init__(self, compiled: bool = False) -> None:
        self.seed = int(torch.randint(-2 ** 63, 2 ** 63 - 1, ()))
        self.used = 0  # words handed out
        self.compiled = compiled

    def words(self, count: int) -> np.ndarray:
        """The next ``count`` 64-bit words of the stream (uint64)."""
        if self.compiled:
            from gencli_boltzmann import kernels

            words = np.empty(count, dtype=np.uint64)
            kernels.fill_bits(np.uint64(self.seed % 2 ** 64), self.used, words)
        else:
            words = splitmix64(self.seed, self.used, count)
        self.used += count
        return words

    def draws(self, count: int, device: torch.device) -> torch.Tensor:
        """``count`` 16-bit draws (int16, four from each word) on ``device``."""
        words = self.words((count + 3) // 4)
        return torch.from_numpy(words.view(np.int16)[:count]).to(device)


def bernoulli16(probability: torch.Tensor, dtype: torch.dtype | None = None,
                bits: RandomBits | None = None) -> torch.Tensor:
    """Bernoulli samples (0/1 in ``dtype``, default ``probability``'s) for training: 16 random bits per sample, the
    next of ``bits`` (a fresh ``RandomBits`` if None), compared with the probability scaled to 16 bits. That
    resolves each probability to 1/65536 (well below bf16's 1/256)."""
    count = probability.numel()
    uniform = (bits or RandomBits()).draws(count, probability.device).view(probability.shape).float()
    # integers in [-32768, 32767]: P(uniform < 65536 p - 32768) = ceil(65536 p) / 65536, exactly 0 at p = 0 and
    # exactly 1 at p = 1.
    return (uniform < probability.float() * 65536.0 - 32768.0).to(dtype or probability.dtype)


def to_images(probability: torch.Tensor, size: int) -> torch.Tensor:
    """(N, V) probabilities in [0, 1] -> uint8 (N, size, size, 1)."""
    return (probability.clamp(0, 1) * 255).round().to(torch.uint8).reshape(-1, size, size, 1).cpu()


def chain_starts(saved: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """Which of the saved persistent chains the n sampling chains continue: a seeded permutation, repeated when
    n exceeds the chains saved (those copies then part ways at their first sweep)."""
    order = torch.randperm(saved.shape[0], generator=generator, device=generator.device)
    return order.repeat((n + saved.shape[0] - 1) // saved.shape[0])[:n]


def run_chains(step: Callable[[], torch.Tensor], n: int, options: Any, request: Any, size: int) -> Images:
    """Drive ``step`` (one Gibbs sweep returning the visible probabilities (n, V)) for --gibbs-steps sweeps;
    the last images, or with --chain ``snapshots`` images per chain evenly spaced over the sweeps."""
    if options.gibbs_steps < 1:
        raise UsageError("--gibbs-steps must be at least 1")
    if options.chain and options.snapshots < 2:
        raise UsageError("--snapshots must be at least 2")
    keep = set()
    if options.chain:
        keep = {round(i * options.gibbs_steps / (options.snapshots - 1)) for i in range(options.snapshots)}
        keep.discard(0)
        keep.add(1)
    frames, visible = [], None
    request.progress(0, options.gibbs_steps)
    for sweep in range(1, options.gibbs_steps + 1):
        visible = step()
        if sweep in keep:
            frames.append(to_images(visible, size))
        if sweep % 50 == 0 or sweep == options.gibbs_steps:
            request.progress(sweep, options.gibbs_steps)
    if not options.chain:
        return Images(to_images(visible, size).numpy())
    grid = torch.stack(frames, dim=1).reshape(-1, size, size, 1)  # (n chains x snapshots) row by row
    return Images(grid.numpy(), columns=len(frames))


def filter_images(weights: torch.Tensor, n: int, size: int) -> Images:
    """First-layer weights (V, H) as images, each unit's filter stretched to its own min..max."""
    count = min(weights.shape[1], 100 if n == 1 else n)
    filters = weights[:, :count].T.float()  # (count, V)
    low = filters.min(dim=1, keepdim=True).values
    high = filters.max(dim=1, keepdim=True).values
    return Images(to_images((filters - low) / (high - low).clamp_min(1e-12), size).numpy())


def image_probabilities(path: Any, size: int) -> torch.Tensor:
    """An image file as pixel-on probabilities (1, V): the mean-field input of the first layer."""
    return load_image(path, size, 1).float().reshape(1, -1) / 255.0


def features_text(inputs: torch.Tensor, top: int, layer: str) -> Text:
    """The ``top`` most active hidden units of one image, from their total inputs (logits), as lines of text;
    ranking by input keeps saturated units (p(on) 1.0000) in a meaningful order."""
    if top < 1:
        raise UsageError("--top must be at least 1")
    values, units = inputs.flatten().topk(min(top, inputs.numel()))
    lines = [f"{layer} unit {int(u):>4}  p(on) {float(torch.sigmoid(v)):.4f}  input {float(v):+8.2f}\n"
             for v, u in zip(values, units)]
    return Text([f"most active {layer} units (of {inputs.numel()}):\n", *lines])
