"""The model (both players, and the frame encoder of the conditional variant), the data, and one training step.

The engine runs one ``loss`` per step, one backward pass and one optimizer step, so the step is ONE scalar
whose gradient is, for each player, the gradient of its own loss (as in gencli's image GANs):

    L = L_D(theta_D; fake clips detached) + L_G(theta_G; the discriminator's parameters detached)

with the non-saturating generator loss -log D(G(z)), plus the paper's L1 penalty on the mask (and, for the
conditional model, the L1 distance between the input frame and the first generated frame).

With ``--object-warmup N`` the first N steps are an image GAN's: the generator draws one frame of each clip
alone, the object critic judges its moving part against the real clips' and the frame critic the whole frame
(the object held, so it teaches the background), at under a third of a full step's cost, so the object's look
is learned from many cheap steps, over backgrounds like the real ones, before the clip's critic and the moving
parts' join in.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import Clips, Prepared, SampleRequest
from gencli_videogan import NEW_RUN, moving_digits
from gencli_videogan.networks import (Discriminators, FrameEncoder, TwoStreamGenerator, compose, judged_frames,
                                      moving_parts)

EMBEDDED = "moving-digits"
DIGIT_CLASSES = 10
HOLDOUT_FRACTION = 0.2  # of a --data folder's clips: held out for evaluation
NEW_OBJECT_WIDTH_PER_D_WIDTH = 2  # new runs' object critic, unless --object-width says otherwise
MIN_FOLDER_CLIPS = 20  # so that the held-out fifth has 4 clips: two real sets of two


class VideoGANPair(nn.Module):
    """Generator, discriminator (and frame encoder); ``forward`` is the training objective."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        check_sizes(config)
        self.generator = TwoStreamGenerator(config)
        self.discriminator = Discriminators(config)  # the clip's (3D) and its frames' (2D)
        self.encoder = FrameEncoder(config) if config.conditional else None
        self.z_dim, self.classes = config.z_dim, config.classes
        # The moving average of the generator's player (generator and frame encoder), which sampling uses: a
        # copy that no optimizer sees, updated at the start of every training step (so one step behind).
        self.ema_decay = config.ema_decay
        self.ema: nn.ModuleDict | None = None
        if config.ema_decay > 0:
            player = {"generator": self.generator} | ({"encoder": self.encoder} if self.encoder else {})
            self.ema = nn.ModuleDict({k: copy.deepcopy(m) for k, m in player.items()}).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))
        # The object warm-up: for its first steps only the object critic plays (see ``forward``); the count of
        # training steps taken travels with the weights, so a resumed run knows where it is.
        self.object_warmup = config.object_warmup
        if config.object_warmup > 0:
            self.register_buffer("steps_taken", torch.zeros((), dtype=torch.int64))

    def latent(self, z: torch.Tensor, first_frames: torch.Tensor | None, encoder: nn.Module | None = None,
               labels: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's input: z, or [encoded first frame, z] for the conditional model; then, for a model
        with classes, the one-hot code of ``labels`` (B,)."""
        if self.encoder is not None:
            if first_frames is None:
                raise UsageError("this model was trained with --conditional: give --from-image STILL.png")
            z = torch.cat([(encoder or self.encoder)(first_frames), z], dim=1)  # (B, 2 z_dim)
        if self.classes:
            if labels is None:
                raise ValueError("a class-conditional generator needs labels")
            z = torch.cat([z, F.one_hot(labels, self.classes).to(z.dtype)], dim=1)
        return z

    @torch.no_grad()
    def update_ema(self) -> None:
        """ema <- d * ema + (1 - d) * current, for weights and batch-norm statistics alike; d warms up as
        (1 + n) / (10 + n) after n updates, so the first steps' random weights are soon forgotten."""
        assert self.ema is not None
        n = float(self.ema_updates)
        decay = min(self.ema_decay, (1 + n) / (10 + n))
        for name, average in self.ema.items():
            live = getattr(self, name)
            for mine, theirs in zip(average.state_dict().values(), live.state_dict().values()):
                if mine.is_floating_point():
                    mine.lerp_(theirs, 1 - decay)
                else:
                    mine.copy_(theirs)  # batch norm's counter
        self.ema_updates += 1

    def forward(self, real: torch.Tensor, z: torch.Tensor, options: Any, labels: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """``labels`` (B,): the real clips' classes, for a class-conditional model; the generated clips of the
        step are drawn for the same classes (as gencli's cgan): the object critic's class head learns the real
        clips' classes, and the generator is pushed towards objects it names as asked (AC-GAN)."""
        if self.ema is not None and self.training:
            self.update_ema()
        warming, joined = self.phase(options.handover)
        real = to_model(real)  # (B, 3, T, S, S) in [-1, 1]
        latent = self.latent(z, real[:, :, 0], labels=labels)
        gamma = options.warmup_r1 if warming else options.r1
        if warming:  # one frame alone, judged by its moving part (the frame minus its static background)
            foreground, mask, background = self.generator.one_frame(latent)  # (B, 3|1, S, S) each
            frame = None
            if options.warmup_background:  # the whole frame, the object held: the frame critic teaches the background
                frame = compose(foreground.detach().unsqueeze(2), mask.detach().unsqueeze(2), background)[:, :, 0]
            fake = (mask * (foreground - background), frame)  # (B, 3, S, S) each
            # The critics' real inputs (B * T/k, 3, S, S), leaves so that R1 is taken at each critic's input.
            real_input = (moving_parts(real).detach(), None if frame is None else judged_frames(real).detach())
            r1_inputs = [x.requires_grad_(gamma > 0) for x in real_input if x is not None]
        else:
            foreground, mask, background = self.generator.parts(latent)
            fake = compose(foreground, mask, background)  # (B, 3, T, S, S)
            real_input = real.requires_grad_(gamma > 0)  # R1 is taken at the critics' real input
            r1_inputs = [real]
        # (B,), (B * T/k,) per frame critic, (B * T/k, classes) or None
        real_logits, real_frame_logits, real_classes = self.discriminator(real_input, warming)
        # no gradient reaches G through L_D
        fake_logits, fake_frame_logits, _ = self.discriminator(detached(fake), warming)
        d_loss = discriminator_loss(real_frame_logits, fake_frame_logits, options.real_label)
        if real_logits is not None and fake_logits is not None:  # the clip critic (not in the object warm-up)
            d_loss = d_loss + discriminator_loss(real_logits, fake_logits, options.real_label)
        class_accuracy = None
        if real_classes is not None:  # the class head learns from real clips only
            judged = labels.repeat_interleave(real_classes.shape[0] // labels.shape[0])  # each judged frame's
            d_loss = d_loss + F.cross_entropy(real_classes, judged)
            class_accuracy = (real_classes.detach().argmax(dim=1) == judged).float().mean()
        if gamma > 0:  # R1 (Mescheder et al. 2018): gamma / 2 * |grad_x D(x)|^2 on real clips
            scores = real_frame_logits.sum() + (0 if real_logits is None else real_logits.sum())
            slopes = torch.autograd.grad(scores, r1_inputs, create_graph=True)
            d_loss = d_loss + gamma / 2 * sum(slope.square().flatten(1).sum(1).mean() for slope in slopes)
        frozen = {name: p.detach() for name, p in self.discriminator.named_parameters()}
        g_logits, g_frame_logits, g_classes = functional_call(self.discriminator, frozen, (fake, warming))
        adversarial = F.binary_cross_entropy_with_logits(g_frame_logits, torch.ones_like(g_frame_logits),
                                                         weight=None if warming else
                                                         self.discriminator.joining_weights(g_frame_logits, joined))
        if g_logits is not None:  # -log D(G(z)), the clip critic's
            clip_term = F.binary_cross_entropy_with_logits(g_logits, torch.ones_like(g_logits))
            adversarial = adversarial + joined * clip_term
        if g_classes is not None:  # the generated frames judged: T/k per clip, or one in the warm-up
            targets = labels.repeat_interleave(g_classes.shape[0] // labels.shape[0])
            adversarial = adversarial + options.class_weight * F.cross_entropy(g_classes, targets)
        g_loss = adversarial + options.mask_l1 * mask.mean()
        out = {"d_loss": d_loss, "g_loss": g_loss, "g_adversarial": adversarial.detach(), "mask": mask.detach(),
               "fake_frame_logits": fake_frame_logits.detach()}
        if real_logits is not None and fake_logits is not None:
            out |= {"real_logits": real_logits.detach(), "fake_logits": fake_logits.detach()}
        if class_accuracy is not None:
            out["real_class_acc"] = class_accuracy
        if self.encoder is not None:  # the first generated frame (in the warm-up, its one frame) against the input
            first = (compose(foreground.unsqueeze(2), mask.unsqueeze(2), background) if warming else fake)[:, :, 0]
            reconstruction = (first - real[:, :, 0].detach()).abs().mean()
            out["g_loss"] = g_loss + options.reconstruction * reconstruction
            out["reconstruction"] = reconstruction.detach()
        return out

    def phase(self, handover: int) -> tuple[bool, float]:
        """(whether this training step is in the object warm-up, the weight in the generator's objective of the
        critics that join after it), and count the step. The warm-up is the first ``object_warmup`` steps, in
        which one frame is drawn, its object judged by the object critic and its background by the frame critic,
        so that the generator learns the object's look from cheap steps. Then the clip's and the moving parts'
        critics join, untrained, and the frame critic judges whole clips' frames: for ``handover`` steps they
        learn at full strength while their weight in the generator's objective rises from 0 to 1. (Joining at
        once, their first verdicts undid the warm-up: coherence fell from 0.82 to 0.57 in 500 steps.)"""
        if not self.object_warmup or not self.training:
            return False, 1.0
        done = int(self.steps_taken) - self.object_warmup  # full steps taken before this one
        self.steps_taken += 1
        return done < 0, min(1.0, max(0.0, (done + 1) / handover if handover else 1.0))

    @torch.no_grad()
    def generate_parts(self, z: torch.Tensor, first_frames: torch.Tensor | None = None,
                       labels: torch.Tensor | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(clip, foreground, mask, background) in [0, 1]: (B, 3, T, S, S) x 3 parts and (B, 3, S, S), from the
        moving average of the generator where the model keeps one."""
        generator, encoder = self.generator, self.encoder
        if self.ema is not None:
            generator, encoder = self.ema["generator"], self.ema["encoder"] if self.encoder else None
        foreground, mask, background = generator.parts(self.latent(z, first_frames, encoder, labels))
        clip = compose(foreground, mask, background)
        unit = lambda x: ((x + 1) / 2).clamp(0, 1)  # noqa: E731
        return unit(clip), unit(foreground), mask, unit(background)


def detached(fake: torch.Tensor | tuple[torch.Tensor | None, ...]) -> Any:
    """The generated clips (or the warm-up's pair of frames) cut from the generator's graph, for L_D."""
    if isinstance(fake, tuple):
        return tuple(None if x is None else x.detach() for x in fake)
    return fake.detach()


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, real_label: float) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, real_label))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def check_sizes(config: Any) -> None:
    for name in ("image_size", "frames"):
        value = getattr(config, name)
        if value % 8:
            raise UsageError(f"--{name.replace('_', '-')} {value}: must be a multiple of 8 (three stride-2 layers)")


def to_model(frames: torch.Tensor) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return frames.permute(0, 4, 1, 2, 3).float() / 127.5 - 1.0


def to_uint8(clips: torch.Tensor) -> Any:
    """[0, 1] (B, C, T, H, W) -> uint8 numpy (B, T, H, W, C), as Clips wants."""
    return (clips.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 4, 1).contiguous().numpy()


def build(config: Any) -> VideoGANPair:
    return VideoGANPair(config)


def configure_optimizer(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    """Adam with beta1 0.5 (the paper, after DCGAN); one group per player (the encoder plays with G)."""
    generator = list(model.generator.parameters()) + (list(model.encoder.parameters()) if model.encoder else [])
    return torch.optim.Adam([{"params": generator}, {"params": model.discriminator.parameters()}], lr=lr,
                            betas=(0.5, 0.999))


def loss(model: nn.Module, batch: tuple[torch.Tensor, ...], options: Any) -> tuple[torch.Tensor, dict[str, float]]:
    real, z, *labels = batch  # (frames, z) or, for a class-conditional model, (frames, z, labels)
    if real.shape[0] < 2:  # batch normalisation has no statistics for one clip
        raise UsageError(f"--batch-size {real.shape[0]}: batch normalisation needs at least 2 clips a step (in "
                         "each process, with --nproc)")
    out = model(real, z, options, labels[0] if labels else None)
    metrics = {
        "d_loss": float(out["d_loss"].detach()),
        "g_loss": float(out["g_loss"].detach()),
        "g_adversarial": float(out["g_adversarial"]),
        "d_frame_fake_acc": float((out["fake_frame_logits"] < 0).float().mean()),  # D calls generated frames fake
        "mask_mean": float(out["mask"].mean()),  # the share of pixels the foreground stream claims
    }
    if "real_logits" in out:  # not in the object warm-up, where the clip critic sits out
        metrics["d_real_acc"] = float((out["real_logits"] > 0).float().mean())  # D calls real clips real
        metrics["d_fake_acc"] = float((out["fake_logits"] < 0).float().mean())  # ... and generated clips fake
    if "real_class_acc" in out:
        metrics["d_class_acc"] = float(out["real_class_acc"])  # the object critic names real digits right
    if "reconstruction" in out:
        metrics["reconstruction"] = float(out["reconstruction"])
    return out["d_loss"] + out["g_loss"], metrics


# ---- data --------------------------------------------------------------------------------------------------


class MovingDigitBatches:
    """The engine's TrainData for the embedded clips: (frames uint8 (B, T, S, S, 3), z (B, z_dim)) and, for a
    class-conditional model, the digits' classes (B,); made fresh for every batch from the engine's generator (so
    a resumed run sees the very same clips)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        c = self.config
        clips = moving_digits.make_clips(moving_digits.rng_from(generator), batch_size, frames=c.frames,
                                         size=c.image_size, digits=c.digits)
        frames, z = torch.from_numpy(clips.frames), torch.randn(batch_size, c.z_dim, generator=generator)
        return (frames, z, torch.from_numpy(clips.labels)) if c.classes else (frames, z)


class ClipPool:
    """TrainData over a fixed pool of clips uint8 (N, T, S, S, 3) cut from a --data folder."""

    def __init__(self, frames: torch.Tensor, z_dim: int) -> None:
        self.frames, self.z_dim = frames, z_dim

    def batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, self.frames.shape[0], (batch_size,), generator=generator)
        return self.frames[rows], torch.randn(batch_size, self.z_dim, generator=generator)


def is_embedded(source: str | None) -> bool:
    return source is None or source == EMBEDDED


def folder_clips(source: str, config: Any, part: str) -> torch.Tensor:
    """The training part or the held-out part (every fifth clip) of a --data folder's clips."""
    from gencli_videogan.folders import load_clips

    clips = torch.from_numpy(load_clips(source, config.image_size, config.frames))  # (N, T, S, S, 3)
    if clips.shape[0] < MIN_FOLDER_CLIPS:  # evaluation compares two held-out sets of at least two clips
        raise UsageError(f"--data {source}: {clips.shape[0]} clip(s) of {config.frames} frames; at least "
                         f"{MIN_FOLDER_CLIPS} are needed (a fifth is held out for evaluation): give more or longer "
                         "videos, or a smaller --frames")
    held = torch.zeros(clips.shape[0], dtype=torch.bool)
    held[::int(round(1 / HOLDOUT_FRACTION))] = True
    return clips[~held] if part == "train" else clips[held]


def prepare(data: str | None, config: Any, options: Any) -> Prepared:
    check_sizes(config)
    # Labels: the embedded clips' digit classes, where a clip has one digit (with two, "the clip's class" is
    # not defined); a --data folder has none.
    classes = DIGIT_CLASSES if options.labels and is_embedded(data) and config.digits == 1 else 0
    config = dataclasses.replace(config, training_data=data or EMBEDDED, ema_decay=options.ema_decay,
                                 classes=classes, object_warmup=options.object_warmup,
                                 object_width=config.object_width or NEW_OBJECT_WIDTH_PER_D_WIDTH * config.d_width,
                                 **NEW_RUN)
    if is_embedded(data):
        description = moving_digits.describe(config.frames, config.image_size, config.digits)
        return Prepared(config, MovingDigitBatches(config), description)
    clips = folder_clips(data, config, "train")
    description = f"{data} ({clips.shape[0]:,} clips of {config.frames} frames at {config.image_size}x{config.image_size})"
    return Prepared(config, ClipPool(clips, config.z_dim), description)


# ---- sampling ------------------------------------------------------------------------------------------------


def seeded_latents(seed: int, n: int, z_dim: int) -> torch.Tensor:
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))


def first_frames_from(options: Any, config: Any, n: int) -> torch.Tensor | None:
    """The --from-image still as (n, 3, S, S) in [-1, 1], or None."""
    if options.from_image is None or str(options.from_image) == "":
        return None
    if not config.conditional:
        raise UsageError("--from-image needs a model trained with --conditional (this one has no frame encoder)")
    from gencli.data.images import load_image

    still = load_image(options.from_image, config.image_size, 3).float() / 127.5 - 1.0  # (3, S, S)
    return still.unsqueeze(0).expand(n, -1, -1, -1)


def cycled_labels(n: int, classes: int) -> torch.Tensor | None:
    """Clip i's class, i mod classes (every class in turn), for a class-conditional model; None otherwise."""
    return torch.arange(n) % classes if classes else None


def requested_labels(label: str, n: int, config: Any) -> torch.Tensor | None:
    """--label as (n,) classes: one class for every clip, or by default every class in turn."""
    if not label:
        return cycled_labels(n, config.classes)
    if not config.classes:
        raise UsageError("--label needs a model trained with labels (this one is unconditional)")
    if not label.isdigit() or int(label) >= config.classes:
        raise UsageError(f"--label {label!r}: must be a class from 0 to {config.classes - 1}")
    return torch.full((n,), int(label))


def generate(model: VideoGANPair, z: torch.Tensor, first: torch.Tensor | None, device: torch.device,
             labels: torch.Tensor | None = None, chunk: int = 64) -> tuple[torch.Tensor, ...]:
    """generate_parts over chunks of z (and labels), on the CPU: (clip, foreground, mask, background)."""
    model.eval()
    parts: list[list[torch.Tensor]] = [[], [], [], []]
    for start in range(0, z.shape[0], chunk):
        still = None if first is None else first[start:start + chunk].to(device)
        chunk_labels = None if labels is None else labels[start:start + chunk].to(device)
        for i, part in enumerate(model.generate_parts(z[start:start + chunk].to(device), still, chunk_labels)):
            parts[i].append(part.float().cpu())
    return tuple(torch.cat(p) for p in parts)


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Clips:
    z = seeded_latents(request.seed, request.n, config.z_dim)
    labels = requested_labels(options.label, request.n, config)
    clip, foreground, mask, background = generate(model, z, first_frames_from(options, config, request.n),
                                                  request.device, labels)
    if not options.parts:
        return Clips(to_uint8(clip), fps=options.fps)
    frames = clip.shape[2]
    rows = torch.stack([clip, foreground, mask.expand(-1, 3, -1, -1, -1),
                        background.unsqueeze(2).expand(-1, -1, frames, -1, -1)], dim=1)  # (N, 4, 3, T, S, S)
    return Clips(to_uint8(rows.flatten(0, 1)), fps=options.fps, columns=4)
