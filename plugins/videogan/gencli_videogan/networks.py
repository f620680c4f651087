"""The two players of Vondrick, Pirsiavash and Torralba (2016), "Generating Videos with Scene Dynamics".

Generator, two streams from one latent z:
* foreground: a tanh video f and a sigmoid mask m, both (T, H, W), from a 3D convolution over a moving
  object (ForegroundStream says how, and where it departs from the paper);
* background: fractionally strided 2D convolutions ending in one tanh image b, shared by every frame;
* the clip: m * f + (1 - m) * b, so whatever the mask leaves out cannot move.
Discriminator: strided 3D convolutions over the whole clip down to one logit.

As in the paper (and DCGAN): 4x4(x4) kernels with stride 2, batch norm and ReLU in the generator, batch norm and
leaky ReLU (0.2) in the discriminator, no batch norm on the discriminator's first layer. The paper starts from
(2, 4, 4) and upsamples four times to 32 frames of 64 x 64; our streams upsample three times from S/8.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gencli.errors import UsageError

# The mask head's start bias: 0, a half-open mask over the whole object. (In the paper's layout, with a mask
# over the whole frame, it had to start mostly closed, or the foreground stream drew whole frames and left the
# background stream unused; here the mask is held to the moving object's footprint.)
MASK_START_BIAS = 0.0


def up2d(inputs: int, outputs: int, padding_mode: str = "zeros") -> list[nn.Module]:
    """Double H and W: nearest-neighbour upsampling, then a 3 x 3 convolution (a resize-convolution, Odena et
    al. 2016: the paper's stride-2 transposed convolutions drew a checkerboard over every sprite)."""
    return [nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(inputs, outputs, 3, padding=1, bias=False, padding_mode=padding_mode),
            nn.BatchNorm2d(outputs), nn.ReLU()]


class TwoStreamGenerator(nn.Module):
    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.g_width
        self.start = (config.frames // 8, config.image_size // 8)  # (T0, S0)
        s0 = self.start[1]
        # conditional: [encoded frame, noise]; with classes, the label's one-hot code appended (as gencli's cgan)
        latent = config.z_dim * (2 if config.conditional else 1) + config.classes
        self.foreground = ForegroundStream(config, latent)
        # Background stream: z -> (4c, S0, S0) -> ... -> (3, 8S0, 8S0).
        self.bg_project = nn.Linear(latent, 4 * c * s0 * s0, bias=False)
        self.bg_project_norm = nn.BatchNorm2d(4 * c)
        self.bg_body = nn.Sequential(*up2d(4 * c, 2 * c), *up2d(2 * c, c), nn.Upsample(scale_factor=2),
                                     nn.Conv2d(c, 3, 3, padding=1))
        self.width = c

    def parts(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(foreground (B, 3, T, H, W) in [-1, 1], mask (B, 1, T, H, W) in [0, 1], background (B, 3, H, W))."""
        foreground, mask = self.foreground(z)
        return foreground, mask, self.background(z)

    def background(self, z: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) in [-1, 1]: the background stream's one image."""
        s0 = self.start[1]
        g = self.bg_project(z).view(z.shape[0], 4 * self.width, s0, s0)  # (B, 4c, S0, S0)
        return torch.tanh(self.bg_body(torch.relu(self.bg_project_norm(g))))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        foreground, mask, background = self.parts(z)
        return compose(foreground, mask, background)

    def one_frame(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The parts of one frame, for a T-th of the foreground stream's work: (foreground (B, 3, H, W), mask (B, 1,
        H, W), background (B, 3, H, W)), the object drawn as in ``parts`` but placed at random."""
        foreground, mask = self.foreground.one_frame(z)
        return foreground, mask, self.background(z)


class ForegroundStream(nn.Module):
    """z -> (foreground f (B, 3, T, S, S) in [-1, 1], mask m (B, 1, T, S, S) in [0, 1]).

    The paper's foreground stream is 3D deconvolutions from z alone, so every frame's object is drawn afresh
    and must learn to stay one object that moves. Trained that way for 1,000 CPU steps ours drew noisy blobs
    that barely moved (0.3 of the real speed) and no frame a classifier took for a digit. Here the stream
    keeps the object's identity by construction: 2D layers draw one feature map of the object (a sprite of
    half the frame side), z also gives it a start and a constant velocity (reflected off the frame's borders,
    the motion of the embedded data and of a ball in a box), and one 3D convolution draws f and m.

    Where that 3D convolution runs is config.head_frame:
    * "sprite" (the default): in the object's own, moving, frame of reference. The sprite's feature stack over
      the T frames is aligned there, so the convolution's time taps see the same object, and f and m are then
      pasted along the path: every frame shows the same drawing, shifted (sub-pixel positions interpolated).
    * "canvas" (the first bundled model): over the sprite already moved into the clip. The neighbouring frames'
      copies then lie 1-3 pixels away, so what the convolution draws depends on the velocity and changes at a
      bounce; it scored a temporal coherence of 0.21. Kept so that model's weights still mean what they did.
    The mask stays a learned soft mask, held to the sprite's footprint: away from the object nothing moves.

    Three more settings, which new runs use (older config.json files lack them and keep the old behaviour):
    * whole_pixels: the path is rounded to whole pixels, as the embedded data's digits move (the gradient passes
      the rounding straight through). Bilinear sub-pixel shifts blur the drawing by a different amount in every
      frame; sampling the earlier bundle with rounded paths alone raised its coherence from 0.30 to 0.41.
    * sprite_padding "replicate": the sprite's convolutions see its border repeated rather than zeros, which had
      drawn bars in the mask along the sprite's square edges.
    * min_speed: the sprite's least speed. Left free, the speeds drifted down during training (1.7 to 1.3 pixels
      a frame on average by step 700, 30% of sprites under 1), and a foreground that stands still is background.
    """

    def __init__(self, config: Any, latent: int) -> None:
        super().__init__()
        c = config.g_width
        self.size, self.frames = config.image_size, config.frames
        if config.head_frame not in HEAD_FRAMES:
            raise UsageError(f"config.json head_frame {config.head_frame!r}: must be one of {', '.join(HEAD_FRAMES)}")
        if config.sprite_padding not in SPRITE_PADDINGS:
            raise UsageError(f"config.json sprite_padding {config.sprite_padding!r}: must be one of "
                             f"{', '.join(SPRITE_PADDINGS)}")
        self.head_frame, self.padding, self.whole_pixels = config.head_frame, config.sprite_padding, config.whole_pixels
        self.min_speed = config.min_speed
        self.sprite_side = config.image_size // 2
        s0 = self.sprite_side // 4
        # Appearance: z -> (4c, S/8, S/8) -> (2c, S/4, S/4) -> (c, S/2, S/2) -> a sprite of c/2 channels.
        self.project = nn.Linear(latent, 4 * c * s0 * s0, bias=False)
        self.project_norm = nn.BatchNorm2d(4 * c)
        moved = max(1, c // 2)  # channels moved into the clip (the 3D convolution runs at full size: few)
        # Zero padding made the sprite's border pixels unlike its inside (the mask lit up in bars along its square
        # edges, which the digit classifier saw); replicate padding draws the border like its neighbours.
        pad = self.padding
        self.body = nn.Sequential(*up2d(4 * c, 2 * c, pad), *up2d(2 * c, c, pad),
                                  nn.Conv2d(c, moved, 3, padding=1, padding_mode=pad))
        # Motion: z -> start (y, x) and velocity (vy, vx).
        self.motion = nn.Sequential(nn.Linear(latent, 64), nn.ReLU(), nn.Linear(64, 4))
        with torch.no_grad():  # velocities start spread over about 0.5 to 3 pixels a frame (at the default init,
            self.motion[2].weight[2:] *= 2.5  # 0.7 on average, and the discriminators hardly changed that)
        # One 3D convolution (3 x 3 pixels x 3 frames) gives the paper's two heads: f (channels 0-2, tanh) and m
        # (channel 3, sigmoid). Replicate padding in time: with zeros the first and last frames, half their time
        # window empty, came out dim. (In the sprite's frame the padding is done by hand: see heads_on_the_sprite.)
        self.heads = nn.Conv3d(moved, 4, 3, padding=1, padding_mode="replicate")
        with torch.no_grad():
            self.heads.bias[3] = MASK_START_BIAS
        self.width, self.s0 = c, s0

    def path(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T, 2): the sprite's top-left corner (y, x) in pixels in each frame, inside [0, S - S/2]."""
        limit = float(self.size - self.sprite_side)
        out = self.motion(z)  # (B, 4)
        start = torch.sigmoid(out[:, :2]) * limit
        scale = self.size / 32  # speeds are pixels a frame at 32 x 32
        velocity = torch.tanh(out[:, 2:]) * (MAX_SPEED - self.min_speed) * scale  # (B, 2) pixels a frame
        if self.min_speed > 0:  # the same direction, min_speed longer: each axis still at most MAX_SPEED
            velocity = velocity + self.min_speed * scale * velocity / velocity.norm(dim=1, keepdim=True).clamp_min(1e-6)
        time = torch.arange(self.frames, dtype=z.dtype, device=z.device)
        free = start[:, None, :] + velocity[:, None, :] * time[None, :, None]  # (B, T, 2) without walls
        corners = reflect(free, limit)
        if self.whole_pixels:  # straight-through rounding: the value rounded, the gradient of the unrounded
            corners = corners + (corners.round() - corners).detach()
        return corners

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.head_frame == "canvas":
            return self.heads_on_the_canvas(self.sprite(z), self.path(z))
        return self.heads_on_the_sprite(self.sprite(z), self.path(z))

    def sprite(self, z: torch.Tensor) -> torch.Tensor:
        """(B, c/2, S/2, S/2): the object's feature map, drawn by the 2D layers."""
        h = self.project(z).view(z.shape[0], 4 * self.width, self.s0, self.s0)
        return self.body(torch.relu(self.project_norm(h)))

    def one_frame(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f (B, 3, S, S), m (B, 1, S, S)) of one frame. In the sprite's frame every frame shows the same drawing,
        so the heads over a stack of one frame (replicated in time) draw what they draw over T. The object is
        placed anywhere in the frame, by whole pixels, uniformly at random, as the data's digits lie: its path
        is not used. A single frame says nothing of motion, and the start's gradient alone, through the motion
        layers it shares with the velocity, sped the sprites up (1.34 x the real speed after 4,500 warm-up
        steps); the start held where the untrained motion layers put it (near the centre) halved how fast
        coherence rose."""
        if self.head_frame != "sprite":
            raise UsageError("one frame alone is drawn only with the heads in the sprite's frame (head_frame "
                             "'sprite')")
        limit = self.size - self.sprite_side
        corner = torch.randint(0, limit + 1, (z.shape[0], 1, 2), device=z.device).to(z.dtype)  # (B, 1, 2)
        f, m = self.heads_on_the_sprite(self.sprite(z), corner)
        return f[:, :, 0], m[:, :, 0]

    def heads_on_the_sprite(self, sprite: torch.Tensor, path: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The 3D heads over the sprite's aligned stack of frames (one per step of ``path`` (B, T, 2)), then f and
        m pasted along the path."""
        stack = sprite.unsqueeze(2).expand(-1, -1, path.shape[1], -1, -1)  # (B, c/2, T, s, s)
        # Padding: replicated in time (as on the canvas); around the sprite zeros (what surrounded it on the
        # canvas) or, with sprite_padding "replicate", its border features repeated (no edge the heads can see).
        if self.padding == "replicate":
            stack = F.pad(stack, (1, 1, 1, 1, 1, 1), mode="replicate")
        else:
            stack = F.pad(F.pad(stack, (0, 0, 0, 0, 1, 1), mode="replicate"), (1, 1, 1, 1))
        out = F.conv3d(stack, self.heads.weight, self.heads.bias)  # (B, 4, T, s, s)
        drawn = torch.cat([torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:])], dim=1)
        # Each frame's drawing pasted at its corner; zero outside, so the mask is held to the footprint.
        pasted = place_frames(drawn, path, self.size)  # (B, 4, T, S, S)
        return pasted[:, :3], pasted[:, 3:]

    def heads_on_the_canvas(self, sprite: torch.Tensor, path: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The sprite and its footprint (a channel of ones) moved along the path, then the 3D heads over that."""
        footprint = torch.ones_like(sprite[:, :1])
        moved = place(torch.cat([sprite, footprint], dim=1), path, self.size)  # (B, c/2 + 1, T, S, S)
        # Channels-last: oneDNN's 3D convolution (and its backward) over few channels is 3x faster that way.
        out = self.heads(moved[:, :-1].contiguous(memory_format=torch.channels_last_3d))  # (B, 4, T, S, S)
        # The mask is the head's, held to the object's footprint: away from the object nothing can move.
        return torch.tanh(out[:, :3]), torch.sigmoid(out[:, 3:]) * moved[:, -1:]


HEAD_FRAMES = ("sprite", "canvas")  # where the foreground's 3D heads run (ForegroundStream says why)
SPRITE_PADDINGS = ("zeros", "replicate")  # what the sprite's convolutions see beyond its border
MAX_SPEED = 3.0  # the fastest a sprite can move, pixels a frame at 32 x 32 (the data's digits: 1 to 2.5)


def reflect(free: torch.Tensor, limit: float) -> torch.Tensor:
    """Fold free positions onto [0, limit], as a ball bouncing between walls (a triangle wave of period 2L)."""
    folded = torch.remainder(free, 2 * limit)
    return limit - (limit - folded).abs()


def place(sprite: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Paste a sprite (B, C, s, s) into a size x size canvas with its top-left corner at corners (B, T, 2)
    (y, x, in pixels, fractions interpolated bilinearly): (B, C, T, size, size), zero outside the sprite."""
    frames = corners.shape[1]
    return place_frames(sprite.unsqueeze(2).expand(-1, -1, frames, -1, -1), corners, size)


def place_frames(sprites: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """Paste frame t of sprites (B, C, T, s, s) with its top-left corner at corners[:, t] (B, T, 2) (y, x, in
    pixels, fractions interpolated bilinearly): (B, C, T, size, size), zero outside the sprite."""
    b, c, frames, side = sprites.shape[0], sprites.shape[1], sprites.shape[2], sprites.shape[-1]
    pixels = torch.arange(size, dtype=sprites.dtype, device=sprites.device) + 0.5  # canvas pixel centres
    # Canvas pixel centres in the sprite's grid_sample coordinates (-1 and 1 are its outer edges).
    ys = (pixels[None, None, :] - corners[..., 0, None]) / side * 2 - 1  # (B, T, size)
    xs = (pixels[None, None, :] - corners[..., 1, None]) / side * 2 - 1
    grid = torch.stack([xs[:, :, None, :].expand(-1, -1, size, -1), ys[:, :, :, None].expand(-1, -1, -1, size)],
                       dim=-1)  # (B, T, size, size, 2) as (x, y)
    per_frame = sprites.transpose(1, 2).reshape(b * frames, c, side, side)
    moved = F.grid_sample(per_frame, grid.reshape(b * frames, size, size, 2), mode="bilinear",
                          padding_mode="zeros", align_corners=False)  # (B*T, C, size, size)
    return moved.view(b, frames, c, size, size).transpose(1, 2)


def compose(foreground: torch.Tensor, mask: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """m * f + (1 - m) * b, the background image repeated over time: (B, 3, T, H, W)."""
    return mask * foreground + (1 - mask) * background.unsqueeze(2)


class ClipDiscriminator(nn.Module):
    """(B, 3, T, S, S) in [-1, 1] -> (B,) logits."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.d_width
        t0, s0 = config.frames // 8, config.image_size // 8
        self.net = nn.Sequential(
            nn.Conv3d(3, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (c, T/2, S/2, S/2)
            nn.Conv3d(c, 2 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(2 * c), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * c, 4 * c, 4, stride=2, padding=1, bias=False), nn.BatchNorm3d(4 * c), nn.LeakyReLU(0.2),
            nn.Conv3d(4 * c, 1, (t0, s0, s0)))  # (1, 1, 1, 1): one logit per clip

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.net(clips).flatten(1).squeeze(1)  # (B,)


class Discriminators(nn.Module):
    """The clip discriminator and the frame discriminator: (B, 3, T, S, S) -> ((B,) clip logits, (B * T/k,)
    logits of every k-th frame), and with config.moving_critic a third, whose logits follow the frames': a 2D
    discriminator of what moves in those frames, each frame minus the clip's per-pixel median over time. With
    config.object_critic a fourth (ObjectCritic) follows, which also gives the class logits of a class-conditional
    model.

    Why the third: the frame discriminator could tell generated frames from real ones by the background alone
    (it won every batch), so little of its signal was about the object. The median over time is a static
    camera's background, real or generated, so the moving part shows real clips' digits on black against the
    generated sprites; a sprite that lingers is partly taken into the median and shows holes there."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        self.clip = ClipDiscriminator(config)
        self.frame = FrameDiscriminator(config)
        self.moving = FrameDiscriminator(config) if config.moving_critic else None
        self.object = ObjectCritic(config) if config.object_critic else None

    def forward(self, clips: torch.Tensor | tuple[torch.Tensor, torch.Tensor | None], warming: bool = False
                ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor | None]:
        """((B,) clip logits, the frame critics' logits one after another ((B * T/k,) each), and for a
        class-conditional model the object critic's class logits of the judged frames (B * T/k, classes), clip
        by clip; else None).

        ``warming`` (the object warm-up): ``clips`` is a pair of single frames (N, 3, S, S), (moving parts,
        whole frames or None): the object critic judges the moving parts (a generated frame's is known without a
        median: mask * (foreground - background)) and, where whole frames are given, the frame critic judges
        them: (None, the object critic's logits then the frame critic's, the class logits)."""
        if warming:
            moving, frames = clips
            if self.object is None:
                raise ValueError("the object warm-up needs the object critic")
            object_logits, classes = self.object(moving)
            logits = object_logits if frames is None else torch.cat([object_logits, self.frame(frames)])
            return None, logits, classes
        logits, classes = [self.frame(judged_frames(clips))], None
        if self.moving is not None or self.object is not None:
            moving = moving_parts(clips)
            if self.moving is not None:
                logits.append(self.moving(moving))
            if self.object is not None:
                object_logits, classes = self.object(moving)
                logits.append(object_logits)
        return self.clip(clips), torch.cat(logits), classes

    def joining_weights(self, frame_logits: torch.Tensor, joined: float) -> torch.Tensor | None:
        """The weight of each of ``forward``'s frame logits in the generator's objective during the handover: the
        object critic's (last) 1, the other frame critics' ``joined``; None when all are 1."""
        if joined >= 1.0 or self.object is None:
            return None
        critics = 1 + (self.moving is not None) + 1  # frame, moving, object
        weights = torch.full_like(frame_logits, joined)
        weights[-(frame_logits.shape[0] // critics):] = 1.0
        return weights


def judged_frames(clips: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, S, S) -> (B * T/k, 3, S, S), clip-major: every k-th frame, those the frame critics judge."""
    return clips[:, :, ::FRAME_STRIDE].transpose(1, 2).flatten(0, 1)


def moving_parts(clips: torch.Tensor) -> torch.Tensor:
    """(B, 3, T, S, S) -> (B * T/k, 3, S, S), clip-major: each judged frame minus the clip's per-pixel median."""
    return (clips[:, :, ::FRAME_STRIDE] - static_background(clips)).transpose(1, 2).flatten(0, 1)


class ObjectCritic(nn.Module):
    """A 2D discriminator of the moving object itself: each judged frame's moving part (the frame minus the clip's
    per-pixel median) seen through a window of half the frame side centred on that part's centre of mass, so the
    object sits in the middle whatever its path (real digits on black against the generated sprites). The frame
    critics see the object as a small part of a textured frame, in any of some 300 places; here it fills the view,
    as digits fill an image GAN's. The centre is found without a gradient: the generator learns the object's look
    here, its path from the clip critic.

    A class-conditional model's critic also names the object's class (AC-GAN, Odena et al. 2017): a class head
    beside the real/fake one, trained on the real clips' labels, and the generator is pushed towards objects it
    names as their clip's label. (Labels given to the discriminators instead, as a projection (Miyato and Koyama
    2018) on the clip and frame critics or as constant planes beside this critic's window, as gencli's cgan takes
    them, left the generator's clips the same whatever their label after 300 to 500 steps, and so did class heads
    on the uncentred frame critics, which named real digits' classes no better than chance after 400 steps.)

    Its width is its own (config.object_width; 0: --d-width's): in the object warm-up it alone teaches the
    generator what the object looks like, an image GAN's discriminator's job (gencli's cgan has 32 channels)."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c, self.side = config.object_width or config.d_width, config.image_size // 2
        self.body = nn.Sequential(*strided_frame_layers(c, batch_norm=False))
        features = 4 * c * (self.side // 8) ** 2
        self.real = nn.Linear(features, 1)
        self.classify = nn.Linear(features, config.classes) if config.classes else None

    def forward(self, moving: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(N, 3, S, S) moving parts -> ((N,) logits of "real", (N, classes) class logits or None)."""
        weights = moving.detach().abs().mean(dim=1)  # (N, S, S)
        views = half_frame_windows(moving, centre_of_mass(weights)[0], self.side)  # (N, 3, S/2, S/2)
        features = self.body(views).flatten(1)
        return self.real(features).squeeze(1), None if self.classify is None else self.classify(features)


def centre_of_mass(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """((..., 2) centre (y, x) in pixels of each image of weights (..., H, W), (...) total weight)."""
    h, w = weights.shape[-2:]
    ys = torch.arange(h, dtype=weights.dtype, device=weights.device)[:, None]
    xs = torch.arange(w, dtype=weights.dtype, device=weights.device)[None, :]
    total = weights.sum(dim=(-2, -1))
    safe = total.clamp_min(1e-9)
    centre = torch.stack([(weights * ys).sum(dim=(-2, -1)) / safe, (weights * xs).sum(dim=(-2, -1)) / safe], -1)
    return centre, total


def half_frame_windows(images: torch.Tensor, centre: torch.Tensor, side: int) -> torch.Tensor:
    """(N, C, H, W) images -> (N, C, side, side): a window of half the frame's side around each centre (N, 2) (y, x
    in pixels), resampled bilinearly to side x side (zero beyond the frame)."""
    n, _, h, w = images.shape
    theta = torch.zeros(n, 2, 3, dtype=images.dtype, device=images.device)
    theta[:, 0, 0], theta[:, 1, 1] = 0.5, 0.5
    theta[:, 0, 2] = (centre[:, 1] + 0.5) / w * 2 - 1  # x, in grid_sample's [-1, 1] coordinates
    theta[:, 1, 2] = (centre[:, 0] + 0.5) / h * 2 - 1  # y
    grid = F.affine_grid(theta, [n, images.shape[1], side, side], align_corners=False)
    return F.grid_sample(images, grid, align_corners=False)


def static_background(clips: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, H, W): each pixel's median over the clip's T frames, a static camera's background."""
    # contiguous: torch 2.13's median over an expanded (stride-0) axis returns wrong values
    return clips.contiguous().median(dim=2, keepdim=True).values


FRAME_STRIDE = 4  # the frame discriminator judges every 4th frame of each clip (4 of 16): most of the signal,
# a quarter of the cost


def strided_frame_layers(c: int, batch_norm: bool) -> list[nn.Module]:
    """Three stride-2 4x4 convolutions, 3 -> c -> 2c -> 4c channels, S -> S/8, leaky ReLU (0.2) after each and, with
    ``batch_norm``, batch norm on all but the first (DCGAN's discriminator stem)."""
    def block(inputs: int, outputs: int, norm: bool) -> list[nn.Module]:
        conv = nn.Conv2d(inputs, outputs, 4, stride=2, padding=1, bias=not norm)
        return [conv, *([nn.BatchNorm2d(outputs)] if norm else []), nn.LeakyReLU(0.2)]
    return [*block(3, c, False), *block(c, 2 * c, batch_norm), *block(2 * c, 4 * c, batch_norm)]


class FrameDiscriminator(nn.Module):
    """A 2D discriminator of single frames, beside the clip discriminator (as in MoCoGAN, Tulyakov et al.
    2018): (B, 3, S, S) in [-1, 1] -> (B,) logits. The clip discriminator's 4x4x4 kernels mix frames from the
    first layer on; judged frame by frame the generator learns what a digit looks like much sooner."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.d_width
        s0 = config.image_size // 8
        self.net = nn.Sequential(*strided_frame_layers(c, batch_norm=False), nn.Conv2d(4 * c, 1, s0))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames).flatten(1).squeeze(1)  # (B,)


class FrameEncoder(nn.Module):
    """The paper's image-to-video variant: a still frame (B, 3, S, S) in [-1, 1] -> a code (B, z_dim) that takes
    the place of (half of) the latent, so the generator animates that frame."""

    def __init__(self, config: Any) -> None:
        super().__init__()
        c = config.d_width
        s0 = config.image_size // 8
        self.net = nn.Sequential(*strided_frame_layers(c, batch_norm=True), nn.Flatten(),
                                 nn.Linear(4 * c * s0 * s0, config.z_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.net(frames)  # (B, z_dim)
