"""``gencli evaluate videogan``: generated clips against held-out real clips and two baselines built in the
same run from other held-out real clips: ``shuffled`` (each clip's frames in a random order: real frames, broken
motion) and ``repeated`` (one real frame held for the whole clip: real frames, no motion).

* per-frame quality (labelled data): Frechet distance between the digit features of generated frames and of
  held-out real frames, in gencli's shared digit classifier (gencli.metrics.digits, the one trained on the
  embedded MNIST digits; not Inception). It sees each frame as MNIST frames a digit: the frame's foreground
  (its difference from the clip's per-pixel median over time, the static background: a digit on black), a
  window of half the frame side centred on the foreground's centre of mass, resized to 28 x 28 and scaled to
  a peak of 1. (A classifier trained on raw textured frames reached only 31% temporal coherence on real clips;
  on uncentred foregrounds 42%.) A clip whose digit does not move has an empty foreground: its frames all look
  alike to the classifier (coherent) and nothing like a digit (a large distance);
* temporal coherence: the share of clips in which one digit class holds in at least 80% of the frames, a frame
  counting only when it shows a digit: its foreground is one compact object (at least 60% of it inside the
  classifier's window) and the classifier is confident (top softmax at least 0.6). Without these two tests the
  classifier gives a class to anything, and pure noise clips scored 1.0 (their views all look alike); with
  them noise and moving blobs or squares score about 0 and real clips 0.87 (0.93 without);
* motion: the mean displacement per frame (pixels) of the foreground's centre of mass, the foreground being
  each frame's difference from the clip's per-pixel median (the static background);
* two-sample test: test accuracy of a small 3D-conv classifier trained to tell real clips from the others
  (0.5: indistinguishable), for generated, shuffled and repeated clips alike;
* foreground/background separation (generated only): ``mask_area``, the mean of the mask, against
  ``mask_motion_share``, the share of all frame-to-frame change that lies under the mask. A mask placed without
  regard to motion catches the share of change equal to its area, so the share well above the area says the
  model put what moves in the foreground and what stays in the background.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gencli.plugin import EvalRequest
from gencli_videogan import moving_digits
from gencli_videogan.model import cycled_labels, folder_clips, generate, is_embedded, seeded_latents
from gencli_videogan.networks import centre_of_mass, half_frame_windows, static_background

HELD_OUT_SEEDS = {"reference": 20160, "baseline": 20161}  # the fixed draws of held-out real clips
COHERENT_SHARE = 0.8  # a clip is coherent when one class holds in at least 80% of its frames
CONFIDENT = 0.6  # a frame's class counts when the classifier's top softmax is at least this...
COMPACT = 0.6  # ...and at least this share of the frame's foreground lies in the classifier's window
NO_DIGIT = -1  # the class of a frame that shows no digit


def evaluate(model: Any, config: Any, options: Any, request: EvalRequest) -> dict[str, float]:
    n = options.clips
    source = request.data if request.data is not None else config.training_data
    reference, baseline, labelled = held_out(source, config, n)  # uint8 (n, T, S, S, 3) each
    tell = getattr(request, "describe_data", None)
    if tell is not None:
        tell(f"{describe(source, config)}: {len(reference):,} held-out real clips as the reference, "
             f"{len(baseline):,} others for the baselines")
    generator = torch.Generator().manual_seed(request.seed)
    first = to_unit(baseline)[:, :, 0] * 2 - 1 if config.conditional else None  # (n, 3, S, S) in [-1, 1]
    requested = cycled_labels(len(reference), config.classes)  # every class in turn (class-conditional models)
    clip, _, mask, _ = generate(model, seeded_latents(request.seed, len(reference), config.z_dim),
                                first, request.device, requested)
    clips = {"generated": clip, "shuffled": shuffled(to_unit(baseline), generator),
             "repeated": repeated(to_unit(baseline), generator)}
    real = to_unit(reference)
    figures: dict[str, float] = {"clips": len(reference)}
    figures |= separation(clip, mask)
    real_motion = motion(real)
    figures["motion_real_px_per_frame"] = real_motion
    for name, group in clips.items():
        figures[f"motion_{name}_px_per_frame"] = motion(group)
    figures["motion_ratio_generated_to_real"] = figures["motion_generated_px_per_frame"] / max(real_motion, 1e-9)
    if labelled:
        figures |= digit_figures(config, real, clips, requested)
    for step, (name, group) in enumerate(clips.items()):
        request.progress(step, len(clips))
        figures[f"two_sample_accuracy_{name}"] = two_sample_accuracy(real, group, options.classifier_steps,
                                                                     request.seed)
    request.progress(len(clips), len(clips))
    return figures


# ---- the clips ------------------------------------------------------------------------------------------


def describe(source: str, config: Any) -> str:
    if is_embedded(source):
        return moving_digits.describe(config.frames, config.image_size, config.digits) + ", test-split digits"
    return f"{source} (held-out fifth of its clips)"


def held_out(source: str | None, config: Any, n: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """(reference clips, baseline clips, whether digit labels apply): two disjoint sets of real clips."""
    if is_embedded(source):
        make = lambda seed: moving_digits.make_clips(  # noqa: E731
            np.random.default_rng(seed), n, frames=config.frames, size=config.image_size, digits=config.digits,
            split="test").frames
        return make(HELD_OUT_SEEDS["reference"]), make(HELD_OUT_SEEDS["baseline"]), True
    clips = folder_clips(source, config, "held").numpy()  # at least 4 clips (folder_clips checks)
    half = len(clips) // 2
    return clips[:half], clips[half:2 * half], False


def to_unit(frames: np.ndarray) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> float (N, 3, T, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 4, 1, 2, 3).float() / 255.0


def shuffled(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each clip's frames in a random order: (N, 3, T, H, W)."""
    order = torch.stack([torch.randperm(clips.shape[2], generator=generator) for _ in range(clips.shape[0])])
    return clips[torch.arange(clips.shape[0])[:, None], :, order].permute(0, 2, 1, 3, 4)  # (N, 3, T, H, W)


def repeated(clips: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One random frame of each clip held for all T frames: (N, 3, T, H, W)."""
    pick = torch.randint(0, clips.shape[2], (clips.shape[0],), generator=generator)
    still = clips[torch.arange(clips.shape[0]), :, pick]  # (N, 3, H, W)
    return still.unsqueeze(2).expand_as(clips).contiguous()


# ---- motion and separation ------------------------------------------------------------------------------


def foreground_weights(clips: torch.Tensor) -> torch.Tensor:
    """(N, T, H, W) in [0, 1]: how far each pixel is from the clip's per-pixel median over time (its static
    background), averaged over the colour channels."""
    return (clips - static_background(clips)).abs().mean(dim=1)


def motion(clips: torch.Tensor) -> float:
    """Mean per-frame displacement (pixels) of the foreground's centre of mass; 0 for a clip that never changes."""
    centre, total = centre_of_mass(foreground_weights(clips))
    step = (centre[:, 1:] - centre[:, :-1]).norm(dim=-1)  # (N, T-1)
    seen = (total[:, 1:] > 1e-3) & (total[:, :-1] > 1e-3)  # both frames differ from the background somewhere
    return float((step * seen).sum() / seen.numel())


def separation(clips: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How the mask lines up with what moves: its mean (area) and its share of the frame-to-frame change."""
    change = (clips[:, :, 1:] - clips[:, :, :-1]).abs().sum(dim=1)  # (N, T-1, H, W)
    # The mask across each frame step: the larger of its two values, since a moving thing changes the pixels it
    # leaves as well as those it arrives at. (N, T-1, H, W)
    under = torch.maximum(mask[:, 0, 1:], mask[:, 0, :-1])
    share = float((under * change).sum() / change.sum().clamp_min(1e-9))
    return {"mask_area": float(mask.mean()), "mask_motion_share": share}


# ---- digit figures --------------------------------------------------------------------------------------


def digit_window(clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each frame's foreground weights (N*T, H, W) and the centre (N*T, 2) of its digit window (y, x)."""
    weights = foreground_weights(clips).flatten(0, 1)  # (N*T, H, W)
    centre, _ = centre_of_mass(weights.unsqueeze(0))  # (1, N*T, 2) in pixels (y, x)
    return weights, centre[0]


def digit_views(clips: torch.Tensor, side: int = 28) -> torch.Tensor:
    """(N, 3, T, H, W) clips -> (N*T, 1, side, side): each frame's foreground framed as MNIST frames a digit."""
    weights, centre = digit_window(clips)
    views = half_frame_windows(weights.unsqueeze(1), centre, side)  # (N*T, 1, side, side)
    peak = views.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return views / peak


def compactness(clips: torch.Tensor) -> torch.Tensor:
    """(N*T,): the share of each frame's foreground inside the digit window (half the frame side around its
    centre of mass). About 1 for a digit on a static background, about 0.25 for noise spread over the frame."""
    weights, centre = digit_window(clips)
    h, w = weights.shape[-2:]
    ys = torch.arange(h, dtype=weights.dtype)[None, :, None]
    xs = torch.arange(w, dtype=weights.dtype)[None, None, :]
    inside = (((ys - centre[:, 0, None, None]).abs() <= h / 4)
              & ((xs - centre[:, 1, None, None]).abs() <= w / 4))  # (N*T, H, W)
    return (weights * inside).sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1)).clamp_min(1e-9)


def digit_classes(classifier: Any, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N*T, F), classes (N, T)) of each frame; NO_DIGIT where the frame shows no digit (its
    foreground is not compact or the classifier is not confident)."""
    from gencli.metrics import digits

    features, labels = digits.embed(classifier, digit_views(clips))
    with torch.no_grad():
        confidence = classifier.out(features.float()).softmax(dim=1).amax(dim=1)  # (N*T,)
    shows_digit = (confidence >= CONFIDENT) & (compactness(clips) >= COMPACT)
    classes = torch.where(shows_digit, labels, torch.full_like(labels, NO_DIGIT))
    return features, classes.view(clips.shape[0], -1)


def digit_figures(config: Any, real: torch.Tensor, clips: dict[str, torch.Tensor],
                  requested: torch.Tensor | None = None) -> dict[str, float]:
    """Frechet distance, coherence and digit frames of each group of clips against the real ones; with
    ``requested`` (the generated clips' classes, for a class-conditional model) also ``label_match_generated``:
    the share of generated clips that are coherent in the class they were asked for."""
    from gencli.data.images import mnist
    from gencli.metrics import digits

    classifier = digits.classifier_for(mnist("train"))  # the bundled classifier of the embedded digits
    real_features, real_classes = digit_classes(classifier, real)
    figures = {"temporal_coherence_real": coherence(real_classes),
               "digit_frames_real": float((real_classes != NO_DIGIT).double().mean())}
    for name, group in clips.items():
        features, classes = digit_classes(classifier, group)
        figures[f"frechet_digit_distance_{name}"] = digits.frechet_distance(features, real_features)
        figures[f"temporal_coherence_{name}"] = coherence(classes)
        figures[f"digit_frames_{name}"] = float((classes != NO_DIGIT).double().mean())
        if name == "generated" and requested is not None:
            figures["label_match_generated"] = label_match(classes, requested)
    return figures


def coherence(classes: torch.Tensor) -> float:
    """Share of clips (rows of (N, T) classes, NO_DIGIT for a frame without a digit) in which one digit class
    fills at least 80% of all the frames."""
    counts = F.one_hot(classes + 1, 11)[..., 1:].sum(dim=1).amax(dim=1)  # (N,) frames of the commonest digit
    return share_holding(counts, classes.shape[1])


def label_match(classes: torch.Tensor, requested: torch.Tensor) -> float:
    """Share of clips (rows of (N, T) classes) in which the requested class (N,) fills at least 80% of the
    frames."""
    return share_holding((classes == requested[:, None]).sum(dim=1), classes.shape[1])


def share_holding(counts: torch.Tensor, frames: int) -> float:
    """Share of clips whose count (N,) of frames of one class is at least COHERENT_SHARE of their ``frames``."""
    return float((counts >= COHERENT_SHARE * frames).double().mean())


# ---- the two-sample test ------------------------------------------------------------------------------------


class ClipCritic(nn.Module):
    """A small 3D-conv classifier: (B, 3, T, H, W) in [0, 1] -> (B,) logit of "real"."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(width, 2 * width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2 * width, 1))

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips * 2 - 1).squeeze(1)


def two_sample_accuracy(real: torch.Tensor, other: torch.Tensor, steps: int, seed: int, batch: int = 32) -> float:
    """Train ClipCritic on the first half of each set, return its accuracy on the second halves."""
    n = min(len(real), len(other))
    half = n // 2
    with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng():
        real, other = real[:n].clone(), other[:n].clone()  # normal tensors: inputs made in inference mode
        torch.manual_seed(seed)  # the critic's initialisation (fork_rng leaves the caller's generator alone)
        critic = ClipCritic()
        optimizer = torch.optim.Adam(critic.parameters(), lr=1e-3)
        generator = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            rows = torch.randint(0, half, (batch // 2,), generator=generator)
            x = torch.cat([real[rows], other[rows]])
            y = torch.cat([torch.ones(len(rows)), torch.zeros(len(rows))])
            loss = F.binary_cross_entropy_with_logits(critic(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            correct = (critic(real[half:]) > 0).sum() + (critic(other[half:]) <= 0).sum()
    return float(correct) / (2 * (n - half))
