"""``gencli sample pix2pix``: translate an --input image (the core decodes it, one at a time), or without one
show held-out pairs translated, a row (input, output, true target) each.

An input is resized to the model's square training size, translated, and the output resized back to the input's
size (Lanczos), so a new image meets the model at the scale it learned. ``--keep-size`` instead runs the U-Net,
which is fully convolutional, on the input as it is (edge-padded to a multiple of 2**depth, then cropped back).
-n gives n translations of one input with different dropout noise (the paper's only source of randomness).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from gencli.errors import UsageError
from gencli.plugin import Images, InputImage, SampleRequest
from gencli_pix2pix.training import held_out_pairs

CHUNK = 64  # images per forward pass: bounded memory for a folder of inputs


def translate(model: Any, inputs: torch.Tensor, device: Any) -> torch.Tensor:
    """uint8 inputs (N, Ca, H, W) -> outputs in [0, 1] (N, Cb, H, W) on the CPU. Dropout draws from torch's
    global generator, which the core seeds, so a seed gives the same translation."""
    model.eval()
    parts = [model.translate(inputs[start:start + CHUNK].to(device)).float().cpu()
             for start in range(0, inputs.shape[0], CHUNK)]
    return torch.cat(parts)


def as_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """[0, 1] images (N, C, H, W) with C 1 or 3 -> ``channels`` (grey repeated, or colour averaged by luminance)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=images.dtype).view(1, 3, 1, 1)
    return (images * weights).sum(1, keepdim=True)


def to_uint8(images: torch.Tensor) -> Any:
    """[0, 1] (N, C, H, W) -> uint8 numpy (N, H, W, C), as Images wants."""
    return (images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def held_out_rows(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    """-n held-out pairs chosen by the seed, one row each: input, translation, true target."""
    pairs = held_out_pairs(options.examples or config.training_data, config)
    rows = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(request.seed))[:request.n]
    outputs = translate(model, pairs.a[rows], request.device)  # (n, Cb, H, W)
    channels = max(config.in_channels, config.out_channels)
    triplets = torch.stack([as_channels(pairs.a[rows].float() / 255.0, channels), as_channels(outputs, channels),
                            as_channels(pairs.b[rows].float() / 255.0, channels)], dim=1)  # (n, 3, C, H, W)
    return Images(to_uint8(triplets.flatten(0, 1)), columns=3)


def resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 (N, C, H, W) -> uint8 (N, C, height, width), Lanczos (Pillow) per image and channel."""
    from PIL import Image

    if images.shape[-2:] == (height, width):
        return images
    planes = [np.asarray(Image.fromarray(plane.numpy()).resize((width, height), Image.Resampling.LANCZOS))
              for plane in images.flatten(0, 1)]  # (N * C) x (height, width)
    return torch.from_numpy(np.stack(planes)).view(*images.shape[:2], height, width)


def input_tensor(image: InputImage, channels: int) -> torch.Tensor:
    """The decoded --input (H, W, 1 or 3) as uint8 (1, channels, H, W): grey repeated, or colour to luminance."""
    pixels = torch.from_numpy(np.array(image.pixels)).permute(2, 0, 1)[None]  # (1, C, H, W); a copy: may be read-only
    if pixels.shape[1] == channels:
        return pixels
    converted = as_channels(pixels.float() / 255.0, channels)
    return (converted * 255).round().to(torch.uint8)


def translate_input(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    image = request.input
    inputs = input_tensor(image, config.in_channels)  # (1, Ca, H, W)
    height, width = inputs.shape[-2:]
    if options.keep_size:
        step = 2 ** model.generator.depth
        pad_h, pad_w = -height % step, -width % step
        padded = F.pad(inputs.float(), (0, pad_w, 0, pad_h), mode="replicate").to(torch.uint8)
        batch = padded.expand(request.n, -1, -1, -1)  # (n, Ca, H', W'): one dropout draw each
        outputs = translate(model, batch, request.device)[..., :height, :width]  # (n, Cb, H, W)
        pixels = (outputs * 255).round().to(torch.uint8)
    else:
        small = resize(inputs, config.image_size, config.image_size).expand(request.n, -1, -1, -1)
        outputs = translate(model, small, request.device)  # (n, Cb, s, s)
        pixels = resize((outputs * 255).round().to(torch.uint8), height, width)  # (n, Cb, H, W)
    result = pixels.permute(0, 2, 3, 1).numpy()  # (n, H, W, Cb)
    if image.alpha is not None:  # keep the input's transparency as a last channel
        alpha = np.broadcast_to(image.alpha[None, :, :, None], (request.n, height, width, 1))
        result = np.concatenate([result, alpha], axis=3)
    return Images(np.ascontiguousarray(result))


def sample(model: Any, config: Any, options: Any, request: SampleRequest) -> Images:
    if request.input is None:
        return held_out_rows(model, config, options, request)
    if options.examples:
        raise UsageError("--examples picks held-out pairs to show without --input; give one of them")
    return translate_input(model, config, options, request)
