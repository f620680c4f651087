"""How good a video GAN's digits must be for issue 16's temporal-coherence bar: gencli's bundled image GANs'
samples pasted into the embedded moving-digit clips as their digits, scored by ``gencli evaluate videogan``'s
coherence, beside the real test digits in the same run.

    .venv/bin/python benchmarks/videogan_digit_ceiling.py            # gan, dcgan, cgan; 256 clips each

A pasted sample moves exactly as a real digit does (whole pixels, bouncing, over a tinted texture), so what
separates a model's figure from the real digits' is the digits' look alone: it is the most a video generator that
draws digits as well as that image model can score. ``cgan`` is asked for every class in turn (its default).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

import numpy as np
from machine import describe, summary
from PIL import Image


def sampled_digits(model: str, n: int, seed: int, side: int) -> np.ndarray:
    """``n`` samples of an image plugin, through the CLI, as float32 sprites (n, side, side) in [0, 1]."""
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "gencli", "sample", model, "-n", str(n), "--seed", str(seed), "-q",
                        "-o", f"{folder}/{{i}}.png"], check=True)
        pictures = [Image.open(f"{folder}/{i}.png").convert("L") for i in range(n)]
    return np.stack([np.asarray(p.resize((side, side), Image.Resampling.LANCZOS), np.float32) / 255.0
                     for p in pictures])


def coherence_with(sprites: np.ndarray | None, n: int, seed: int) -> dict[str, float]:
    """Coherence and digit frames of ``n`` embedded clips whose digits are ``sprites`` (None: the real test digits)."""
    from gencli.data.images import mnist
    from gencli.metrics import digits
    from gencli_videogan import evaluation, moving_digits

    real_sprites = moving_digits.digit_sprites
    if sprites is not None:  # the clip maker draws its digits from digit_sprites: hand it the samples instead
        moving_digits.digit_sprites = lambda split, size: (sprites, np.zeros(len(sprites), np.int64))
    try:
        clips = moving_digits.make_clips(np.random.default_rng(seed), n, split="test").frames
    finally:
        moving_digits.digit_sprites = real_sprites
    classes = evaluation.digit_classes(digits.classifier_for(mnist("train")), evaluation.to_unit(clips))[1]
    return {"temporal_coherence": evaluation.coherence(classes),
            "digit_frames": float((classes != evaluation.NO_DIGIT).double().mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gan,dcgan,cgan")
    parser.add_argument("--clips", type=int, default=256)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    machine = describe()
    print(summary(machine))
    rows = {"real test digits": coherence_with(None, args.clips, args.seed)}
    for model in args.models.split(","):
        rows[f"{model} samples"] = coherence_with(sampled_digits(model, args.clips, args.seed, 16), args.clips,
                                                  args.seed)
    print(f"{'digits in the clips':<24} {'coherence':>10} {'digit frames':>13}")
    for name, row in rows.items():
        print(f"{name:<24} {row['temporal_coherence']:>10.3f} {row['digit_frames']:>13.3f}")
    print(json.dumps({"machine": machine, "clips": args.clips, "seed": args.seed, "results": rows}))


if __name__ == "__main__":
    main()
