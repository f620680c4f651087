"""pix2pix's two networks (Isola et al. 2016, section 3.2 and appendix 6.1), scaled to small images.

* ``UNet``: an encoder of stride-2 4x4 convolutions down to a bottleneck, a mirrored decoder of transposed
  convolutions, and a skip connection from every encoder level to the decoder level of the same size. The
  noise is dropout (p = 0.5) in the innermost decoder layers, kept on at sampling as in the paper.
* ``PatchGAN``: a fully convolutional discriminator of the pair (input, output) that gives one logit per
  overlapping patch; its receptive field is the "patch size" (70 x 70 for the paper's 256 x 256 images).

Normalisation is instance norm, not the paper's batch norm: the paper runs batch norm on the test batch's own
statistics with batch size 1, which *is* instance norm; using it everywhere makes training (with batches) and
sampling agree, and makes each output depend on its own input only.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gencli.errors import UsageError

DROPOUT = 0.5  # the paper's


def level_channels(depth: int, base: int, cap: int) -> list[int]:
    """Channels of the encoder's levels, doubling from ``base`` up to ``cap`` (paper: 64 ... 512)."""
    return [min(base * 2 ** level, cap) for level in range(depth)]


def norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class UNet(nn.Module):
    """(B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1], for H and W multiples of
    2**depth. ``dropout_layers`` innermost decoder layers carry always-on dropout (paper: 3 of 8)."""

    def __init__(self, *, in_channels: int, out_channels: int, depth: int, base_channels: int, max_channels: int,
                 dropout_layers: int) -> None:
        super().__init__()
        if depth < 1:
            raise UsageError(f"--depth {depth}: the U-Net needs at least one level")
        self.depth, self.dropout_layers = depth, dropout_layers
        widths = level_channels(depth, base_channels, max_channels)
        self.down = nn.ModuleList()
        self.down_norms = nn.ModuleList()
        for level, width in enumerate(widths):
            source = in_channels if level == 0 else widths[level - 1]
            self.down.append(nn.Conv2d(source, width, 4, stride=2, padding=1))
            # no norm on the outermost level (the paper's C64) nor on the bottleneck (a 1x1 map has no spread)
            self.down_norms.append(norm(width) if 0 < level < depth - 1 else nn.Identity())
        self.up = nn.ModuleList()
        self.up_norms = nn.ModuleList()
        for level in reversed(range(depth)):  # innermost first
            source = widths[level] if level == depth - 1 else 2 * widths[level]  # the skip doubles the input
            target = out_channels if level == 0 else widths[level - 1]
            self.up.append(nn.ConvTranspose2d(source, target, 4, stride=2, padding=1))
            self.up_norms.append(norm(target) if level > 0 else nn.Identity())

    def check_size(self, height: int, width: int) -> None:
        step = 2 ** self.depth
        if height % step or width % step:
            raise UsageError(f"the U-Net of depth {self.depth} needs image sides that are multiples of {step}; "
                             f"got {height} x {width}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_size(x.shape[-2], x.shape[-1])
        skips = []
        h = x
        for level, (conv, normalise) in enumerate(zip(self.down, self.down_norms)):
            h = normalise(conv(h if level == 0 else F.leaky_relu(h, 0.2)))  # (B, c_level, H/2^(l+1), W/2^(l+1))
            skips.append(h)
        for step, (conv, normalise) in enumerate(zip(self.up, self.up_norms)):
            level = self.depth - 1 - step
            if level < self.depth - 1:
                h = torch.cat([h, skips[level]], dim=1)  # (B, 2 c_level, ...): the skip connection
            h = normalise(conv(F.relu(h)))  # (B, c_{level-1}, H/2^level, W/2^level)
            if step < self.dropout_layers and level > 0:
                h = F.dropout(h, DROPOUT, training=True)  # the generator's noise: on at sampling too
        return torch.tanh(h)  # (B, out_channels, H, W)


def receptive_field(stride_two_layers: int) -> int:
    """The PatchGAN's patch side: two stride-1 4x4 convs see 7 pixels, each stride-2 4x4 conv below them
    doubles that and adds 2 (1 layer: 16, 2: 34, 3: 70 as in the paper, 4: 142)."""
    field = 7
    for _ in range(stride_two_layers):
        field = 2 * field + 2
    return field


def patch_layers_for(image_size: int) -> int:
    """Stride-2 layers whose patch covers about the share of the image the paper's 70 x 70 covers of 256 x 256
    (27%), with at least one: 16 pixels for 32 x 32 digits, 34 for 128, 70 for 256."""
    layers = 1
    while receptive_field(layers + 1) <= image_size * 70 / 256:
        layers += 1
    return layers


class PatchGAN(nn.Module):
    """(input (B, Ca, H, W), output (B, Cb, H, W)) -> logits (B, 1, h, w), one per patch: the paper's
    C64-C128-C256-C512 with ``stride_two_layers`` stride-2 convolutions, then a stride-1 one and the 1-channel
    output convolution; leaky ReLU 0.2, no norm on the first layer."""

    def __init__(self, *, in_channels: int, out_channels: int, base_channels: int, stride_two_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, source = base_channels, in_channels + out_channels
        for layer in range(stride_two_layers + 1):  # the stride-2 ones, then one of stride 1
            stride = 2 if layer < stride_two_layers else 1
            width = min(base_channels * 2 ** layer, 8 * base_channels)
            layers.append(nn.Conv2d(source, width, 4, stride=stride, padding=1))
            if layer > 0:
                layers.append(norm(width))
            layers.append(nn.LeakyReLU(0.2))
            source = width
        layers.append(nn.Conv2d(source, 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.patch = receptive_field(stride_two_layers)

    def forward(self, condition: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([condition, image], dim=1))  # (B, 1, h, w) logits
