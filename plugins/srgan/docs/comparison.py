"""Make docs/comparison.png: one held-out photo's crop as the low-resolution input (each pixel 4x4), bicubic,
SRResNet, SRGAN and the original, side by side, from the bundled weights.

    python plugins/srgan/docs/comparison.py [PHOTO] [TOP LEFT]   # default: chelsea 8 40 (in input pixels)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gencli import weights
from gencli_srgan import photos, srgan, srresnet
from gencli_srgan.upscale import upscale

SIDE = 64  # input pixels a side of the crop shown


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "chelsea"
    top, left = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (8, 40)
    photo = next(p for p in photos.photos(None, "test") if p.name == name)
    high = photos.crop_to_multiple(photo.pixels, 4)
    low = photos.downscale(high, 4)
    panels = {"input (4x4 blocks)": low.repeat(4, 0).repeat(4, 1), "bicubic": photos.bicubic(low, high.shape[:2])}
    for plugin in (srresnet, srgan):
        loaded = weights.load(plugin, None, None, torch.device("cpu"), quiet=True)
        with torch.inference_mode():
            panels[plugin.name] = upscale(loaded.model.generator, low, tile=128, device="cpu")
    panels["original"] = high
    crop = (slice(top * 4, (top + SIDE) * 4), slice(left * 4, (left + SIDE) * 4))
    strip = Image.new("RGB", (len(panels) * SIDE * 4 + (len(panels) - 1) * 4, SIDE * 4 + 18), "white")
    draw = ImageDraw.Draw(strip)
    for i, (label, image) in enumerate(panels.items()):
        x = i * (SIDE * 4 + 4)
        strip.paste(Image.fromarray(np.ascontiguousarray(image[crop])), (x, 18))
        draw.text((x + 2, 3), label, fill="black")
    out = Path(__file__).with_name("comparison.png")
    strip.save(out, optimize=True)
    print(f"wrote {out} ({name}, input pixels {top}:{top + SIDE}, {left}:{left + SIDE})")


if __name__ == "__main__":
    main()
